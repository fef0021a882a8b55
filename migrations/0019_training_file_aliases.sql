-- The other names a training file was added under (CatalogFile.AliasAdded): the same bytes uploaded
-- again under a new name keep their entry, and the name is searchable.
ALTER TABLE training_files ADD COLUMN aliases jsonb NOT NULL DEFAULT '[]'::jsonb;
