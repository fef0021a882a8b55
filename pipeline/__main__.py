from pipeline.entry import main

raise SystemExit(main())
