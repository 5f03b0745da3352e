-- Accounts of the analytics API. A user id is derived from (provider, subject), so it is stable across logins.
CREATE TABLE IF NOT EXISTS users
(
    user_id String COMMENT 'Stable user id: u_ + first 20 hex digits of sha256(provider NUL subject)',
    provider LowCardinality(String) COMMENT 'Identity provider: google, kakao or dev (local dev-login)',
    subject String COMMENT 'The provider''s id of the account (OIDC sub, Kakao user id)',
    email String COMMENT 'Email reported by the provider; empty when none',
    email_verified UInt8 COMMENT '1 when the provider vouched for the email; only verified emails match ADMIN_EMAILS / ANALYST_EMAILS',
    name String COMMENT 'Display name reported by the provider',
    roles Array(LowCardinality(String)) COMMENT 'Roles granted in the product (creator, analyst); viewer is implied, admin/analyst also come from settings',
    created_at DateTime64(3, 'UTC') COMMENT 'First login',
    updated_at DateTime64(3, 'UTC') COMMENT 'Version of this row; the latest wins'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY user_id
COMMENT 'Users (read with FINAL or argMax by updated_at)'
