-- The Workbench (SQLite 0010): which ordinary key of a workspace the console manages for its
-- playground, one per workspace. The key's secret is never stored.
CREATE TABLE workbench_keys (
    workspace_id text PRIMARY KEY REFERENCES workspaces (id),
    key_id       text NOT NULL UNIQUE REFERENCES keys (id)
);
