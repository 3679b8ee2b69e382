-- Schema version 3: API keys found by their token hash in one probe.
--
-- A request names its key by token, not by workspace, so finding the key must not
-- ask every workspace (with Citus: every shard). `api_key_hashes` maps each token
-- hash to its key's workspace and id. Like `workspaces` it is small and read on
-- every request: with Citus it is a reference table (copied to every node), not
-- distributed. Its primary key makes a token hash unique across workspaces.

CREATE TABLE api_key_hashes (
    token_hash   bytea  PRIMARY KEY,
    workspace_id bigint NOT NULL,
    id           uuid   NOT NULL
);

INSERT INTO api_key_hashes (token_hash, workspace_id, id)
SELECT token_hash, workspace_id, id FROM api_keys;
