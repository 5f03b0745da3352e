-- Per-video week aggregates in SETTLEMENT_TZ, kept by video_stats_per_week_mv.
CREATE TABLE IF NOT EXISTS video_stats_per_week
(
    week Date COMMENT 'Monday of the ISO week in SETTLEMENT_TZ',
    creator_id String COMMENT 'Creator of the video',
    video_id String COMMENT 'Video id',
    views SimpleAggregateFunction(sum, UInt64) COMMENT 'Counted views (read with sum())',
    watch_ms SimpleAggregateFunction(sum, UInt64) COMMENT 'Credited watch time in ms (read with sum())',
    ad_impressions SimpleAggregateFunction(sum, UInt64) COMMENT 'Counted ad impressions, all ads (read with sum())',
    excluded_self_view SimpleAggregateFunction(sum, UInt64) COMMENT 'Play events not counted: the viewer is the creator',
    excluded_duplicate_viewer SimpleAggregateFunction(sum, UInt64) COMMENT 'Play events not counted: same viewer within the dedup window',
    excluded_duplicate_ip SimpleAggregateFunction(sum, UInt64) COMMENT 'Play events not counted: too many views from one IP within the window',
    unique_viewers AggregateFunction(uniqExact, UInt64) COMMENT 'Distinct viewers with a counted view, as a state of cityHash64(viewer_id) (read with uniqExactMerge())'
)
ENGINE = AggregatingMergeTree
ORDER BY (week, creator_id, video_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Per-video week aggregates of counted views, watch time, ad impressions, unique viewers and excluded views'
