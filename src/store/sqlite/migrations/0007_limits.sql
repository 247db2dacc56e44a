-- Limits: an organization's own monthly spend limit and the tier staff set for it, workspace
-- limits, requests for higher limits and their review, and platform staff. Money is integer
-- nano-USD (*_nusd); times are Unix seconds (UTC). Rates are per minute and per model class;
-- NULL means "no limit of that kind" (or, for a tier, "by purchases").
--
-- This migration depends only on 0001-0005 (organizations, workspaces, accounts, audit_log).

-- One row per organization whose limits were ever changed.
CREATE TABLE org_limits (
    org_id                   TEXT PRIMARY KEY REFERENCES organizations (id),
    -- The organization's own monthly spend limit (Settings > Limits); NULL: none. It never
    -- lifts the tier's cap: the lower of the two applies.
    monthly_spend_limit_nusd INTEGER CHECK (monthly_spend_limit_nusd > 0),
    -- The tier staff put the organization in; NULL: the tier its purchases reach.
    tier_override            TEXT,
    -- Custom limits staff granted, used while the organization is in a custom tier: the monthly
    -- cap and the rates per model class. NULL: no cap / no limit of that kind.
    custom_monthly_cap_nusd  INTEGER CHECK (custom_monthly_cap_nusd > 0),
    custom_rpm               INTEGER CHECK (custom_rpm > 0),
    custom_itpm              INTEGER CHECK (custom_itpm > 0),
    custom_otpm              INTEGER CHECK (custom_otpm > 0),
    updated_at               INTEGER NOT NULL
) STRICT;

-- A workspace's own limits, each applying on top of its organization's (so only a lower one
-- makes a difference). NULL: none of that kind.
CREATE TABLE workspace_limits (
    workspace_id             TEXT PRIMARY KEY REFERENCES workspaces (id),
    org_id                   TEXT NOT NULL REFERENCES organizations (id),
    monthly_spend_limit_nusd INTEGER CHECK (monthly_spend_limit_nusd > 0),
    rpm                      INTEGER CHECK (rpm > 0),
    itpm                     INTEGER CHECK (itpm > 0),
    otpm                     INTEGER CHECK (otpm > 0),
    updated_at               INTEGER NOT NULL
) STRICT;
CREATE INDEX workspace_limits_org ON workspace_limits (org_id);

-- Requests for a higher tier or custom limits, made by an organization's admin and decided
-- once by platform staff.
CREATE TABLE limit_requests (
    id                 TEXT PRIMARY KEY,   -- limreq_01…
    org_id             TEXT NOT NULL REFERENCES organizations (id),
    requested_by       TEXT NOT NULL,      -- account id (or admin key id)
    requested_by_label TEXT NOT NULL,      -- the email (or key name) when it was made
    kind               TEXT NOT NULL CHECK (kind IN ('tier', 'custom')),
    requested_tier     TEXT,               -- kind tier
    monthly_cap_nusd   INTEGER,            -- kind custom: what was asked for (NULL: no change)
    rpm                INTEGER,
    itpm               INTEGER,
    otpm               INTEGER,
    reason             TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'declined')),
    staff_note         TEXT,
    decided_by         TEXT,               -- the staff account id
    decided_by_label   TEXT,               -- its email
    granted_tier       TEXT,               -- approved: the tier the organization was put in
    created_at         INTEGER NOT NULL,
    decided_at         INTEGER
) STRICT;
CREATE INDEX limit_requests_org ON limit_requests (org_id);
CREATE INDEX limit_requests_pending ON limit_requests (created_at) WHERE status = 'pending';
-- One open request per organization at a time.
CREATE UNIQUE INDEX limit_requests_one_pending ON limit_requests (org_id)
    WHERE status = 'pending';

-- Platform staff: accounts that review limit requests and set tiers (`gatehouse staff add`).
CREATE TABLE staff (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    added_at   INTEGER NOT NULL,
    added_by   TEXT NOT NULL              -- who ran the command (the login name)
) STRICT;
