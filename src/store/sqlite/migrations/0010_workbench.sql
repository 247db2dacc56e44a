-- The Workbench: the console's playground calls the model API with a key of the chosen
-- workspace that the console manages (named "Workbench"). This table says which key that is,
-- one per workspace; the key itself is an ordinary row of `keys`, so its calls show in Usage
-- and Cost like any other key's. Its secret is never stored: the console gives the key a new
-- secret, kept only in its own memory, the first time it needs one after a start.
--
-- This migration depends only on 0001-0002 (workspaces, keys).
CREATE TABLE workbench_keys (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
    key_id       TEXT NOT NULL UNIQUE REFERENCES keys (id)
) STRICT;
