-- Ads and their contracts, managed by admins.
CREATE TABLE IF NOT EXISTS ads
(
    ad_id String COMMENT 'Ad id',
    advertiser String COMMENT 'Advertiser name',
    duration_ms UInt64 COMMENT 'Ad duration (ms)',
    contract_start Date COMMENT 'First day the ad runs (SETTLEMENT_TZ)',
    contract_end Date COMMENT 'Last day the ad runs (SETTLEMENT_TZ)',
    created_at DateTime64(3, 'UTC') COMMENT 'When it was created',
    updated_at DateTime64(3, 'UTC') COMMENT 'Version of this row; the latest wins',
    deleted UInt8 DEFAULT 0 COMMENT '1 when the ad was removed'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY ad_id
COMMENT 'Ads (read with FINAL or argMax by updated_at)'
