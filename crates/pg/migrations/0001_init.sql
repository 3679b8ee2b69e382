-- contactdb on PostgreSQL, schema version 1.
--
-- Every table but `workspaces` is keyed by `workspace_id` first: its primary key
-- and every index start with it, so each table can be distributed by workspace
-- with Citus (`create_distributed_table('<table>', 'workspace_id')`), and
-- `workspaces` made a reference table. See docs/postgres.md.

CREATE TABLE workspaces (
    workspace_id  bigint PRIMARY KEY,
    slug          text   NOT NULL UNIQUE,
    uuid          uuid   NOT NULL UNIQUE,
    created_at_us bigint NOT NULL
);

-- Per-workspace counters, changed only under the workspace's writer lock.
CREATE TABLE counters (
    workspace_id    bigint PRIMARY KEY,
    next_contact_id bigint NOT NULL DEFAULT 1,
    contacts        bigint NOT NULL DEFAULT 0,
    feed_seq        bigint NOT NULL DEFAULT 0,
    next_field_id   integer NOT NULL DEFAULT 256
);

-- Custom columns (declared per workspace; ids never reused).
CREATE TABLE columns (
    workspace_id   bigint  NOT NULL,
    name           text    NOT NULL,
    field_id       integer NOT NULL,
    type           text    NOT NULL,
    max_len        integer,
    import_enabled boolean NOT NULL,
    required       boolean NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

-- The master contact table. `fields` holds every set column in the engine's
-- binary field encoding (docs/postgres.md); `email` and `gsm` repeat the
-- normalized email and phone for the two lookup indexes.
CREATE TABLE contacts (
    workspace_id  bigint NOT NULL,
    contact_id    bigint NOT NULL,
    key           text   NOT NULL,
    fields        bytea  NOT NULL,
    aliases       text[] NOT NULL DEFAULT '{}',
    version       bigint NOT NULL,
    created_at_us bigint NOT NULL,
    updated_at_us bigint NOT NULL,
    email         text,
    gsm           text,
    PRIMARY KEY (workspace_id, contact_id)
);
CREATE INDEX contacts_email ON contacts (workspace_id, email) WHERE email IS NOT NULL;
CREATE INDEX contacts_gsm ON contacts (workspace_id, gsm) WHERE gsm IS NOT NULL;

-- Keys and aliases in one namespace: each names one contact.
CREATE TABLE identifiers (
    workspace_id bigint NOT NULL,
    ident        text   NOT NULL,
    contact_id   bigint NOT NULL,
    PRIMARY KEY (workspace_id, ident)
);

-- Applied request ids and their stored reports, pruned after the retention.
CREATE TABLE requests (
    workspace_id  bigint NOT NULL,
    request_id    text   NOT NULL,
    body_hash     bytea  NOT NULL,
    applied_at_us bigint NOT NULL,
    report_json   text   NOT NULL,
    PRIMARY KEY (workspace_id, request_id)
);
CREATE INDEX requests_expiry ON requests (workspace_id, applied_at_us);

-- The change feed: one row per event, `seq` gapless per workspace.
CREATE TABLE feed (
    workspace_id bigint   NOT NULL,
    seq          bigint   NOT NULL,
    kind         smallint NOT NULL,
    key          text     NOT NULL,
    version      bigint   NOT NULL,
    at_us        bigint   NOT NULL,
    detail       text,
    trigger      text,
    job          text,
    PRIMARY KEY (workspace_id, seq)
);

CREATE TABLE feed_consumers (
    workspace_id bigint NOT NULL,
    name         text   NOT NULL,
    acked        bigint NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

-- Background jobs. A runner holds a lease (`lease_owner` until `lease_until_us`);
-- a running job whose lease ran out is taken over by the next runner.
CREATE TABLE jobs (
    workspace_id    bigint   NOT NULL,
    number          bigint   NOT NULL,
    id              uuid     NOT NULL,
    state           smallint NOT NULL,
    processed       bigint   NOT NULL DEFAULT 0,
    total           bigint   NOT NULL,
    submitted_at_us bigint   NOT NULL,
    updated_at_us   bigint   NOT NULL,
    report_json     text     NOT NULL DEFAULT '',
    error           text,
    lease_owner     text,
    lease_until_us  bigint,
    PRIMARY KEY (workspace_id, number)
);
CREATE UNIQUE INDEX jobs_id ON jobs (workspace_id, id);
CREATE INDEX jobs_pending ON jobs (workspace_id, number) WHERE state IN (1, 2);

-- What a running job keeps between its chunks (its request, decisions, reports).
CREATE TABLE job_data (
    workspace_id bigint   NOT NULL,
    number       bigint   NOT NULL,
    kind         smallint NOT NULL,
    rest         bytea    NOT NULL,
    value        bytea    NOT NULL,
    PRIMARY KEY (workspace_id, number, kind, rest)
);

-- Every database starts with workspace `default` (R1).
INSERT INTO workspaces (workspace_id, slug, uuid, created_at_us)
VALUES (1, 'default', gen_random_uuid(),
        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
INSERT INTO counters (workspace_id) VALUES (1);
