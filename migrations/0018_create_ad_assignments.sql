-- Which ads run on which video, in which slot, over which period.
CREATE TABLE IF NOT EXISTS ad_assignments
(
    video_id String COMMENT 'Video id',
    ad_id String COMMENT 'Ad id',
    slot LowCardinality(String) COMMENT 'pre_roll or mid_roll',
    assigned_at DateTime64(3, 'UTC') COMMENT 'When the ad was assigned to the video',
    retired_at Nullable(DateTime64(3, 'UTC')) COMMENT 'When the assignment ended (contract over); NULL while active',
    updated_at DateTime64(3, 'UTC') COMMENT 'Version of this row; the latest wins'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (video_id, ad_id, slot)
COMMENT 'Ad assignments (read with FINAL)'
