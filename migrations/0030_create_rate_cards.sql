-- Settlement rate cards (SPEC 7): versioned, each effective from a date. Rows are
-- never updated; a new card is a new version.
CREATE TABLE IF NOT EXISTS rate_cards
(
    version UInt32 COMMENT 'Rate card version, increasing; settlement lines record the version they were priced with',
    effective_from Date COMMENT 'First day (SETTLEMENT_TZ) the card prices; a day uses the card with the latest effective_from on or before it (the highest version on a tie)',
    mode LowCardinality(String) COMMENT 'graduated: each unit priced by the tier its lifetime count falls in; volume: all of a day''s units priced by the tier of the day''s closing lifetime count',
    tier_floors Array(UInt64) COMMENT 'Tier i covers lifetime counts n with tier_floors[i] < n <= tier_floors[i+1] (the last tier is open); starts at 0, strictly increasing',
    video_rates_tenths Array(UInt64) COMMENT 'Video rate per counted view of each tier, in tenths of a won (1.1 KRW = 11)',
    ad_rates_tenths Array(UInt64) COMMENT 'Ad rate per counted impression of each tier (n counts that ad on that video), in tenths of a won (12 KRW = 120)',
    note String COMMENT 'Why the card was introduced',
    created_at DateTime64(3, 'UTC') COMMENT 'When the card was stored'
)
ENGINE = MergeTree
ORDER BY version
COMMENT 'Settlement rate cards, one row per version (rates are integer tenths of a won)'
