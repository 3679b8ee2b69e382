-- contactdb on PostgreSQL, schema version 2: campaigns, their members, API keys.
--
-- As in version 1, every primary key and index starts with `workspace_id`, so each
-- new table can be distributed by workspace with Citus
-- (`create_distributed_table('<table>', 'workspace_id')`). See docs/postgres.md.

-- Campaign numbers are never reused in a workspace.
ALTER TABLE counters ADD COLUMN next_campaign bigint NOT NULL DEFAULT 1;

-- Campaigns: `next_join` is the order of joining the next member gets; `members`
-- the number of members. Both change only under the workspace's writer lock.
CREATE TABLE campaigns (
    workspace_id  bigint  NOT NULL,
    number        bigint  NOT NULL,
    name          text    NOT NULL,
    required      text[]  NOT NULL DEFAULT '{}',
    created_at_us bigint  NOT NULL,
    next_join     bigint  NOT NULL DEFAULT 1,
    members       bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, number)
);
CREATE UNIQUE INDEX campaigns_name ON campaigns (workspace_id, name);

-- One row per member: a contact (by internal id, so a rekey keeps it) joins a
-- campaign once. `campaign_members_pick` is the pick order (priority ascending,
-- then order of joining), read in order; `campaign_members_contact` finds a
-- contact's memberships when its priority changes.
CREATE TABLE campaign_members (
    workspace_id bigint NOT NULL,
    campaign     bigint NOT NULL,
    contact_id   bigint NOT NULL,
    priority     bigint NOT NULL,
    joined       bigint NOT NULL,
    PRIMARY KEY (workspace_id, campaign, contact_id)
);
CREATE UNIQUE INDEX campaign_members_pick
    ON campaign_members (workspace_id, campaign, priority, joined);
CREATE INDEX campaign_members_contact ON campaign_members (workspace_id, contact_id);

-- API keys: never the token, only its SHA-256. A token is looked up by its hash
-- with one probe of `api_keys_hash` per workspace.
CREATE TABLE api_keys (
    workspace_id  bigint   NOT NULL,
    id            uuid     NOT NULL,
    token_hash    bytea    NOT NULL,
    role          smallint NOT NULL,
    created_at_us bigint   NOT NULL,
    revoked       boolean  NOT NULL DEFAULT false,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (workspace_id, token_hash);
