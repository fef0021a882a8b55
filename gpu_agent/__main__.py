from gpu_agent.main import main

raise SystemExit(main())
