-- Feeds ad_impressions_per_week from every insert into raw_events.
CREATE MATERIALIZED VIEW IF NOT EXISTS ad_impressions_per_week_mv TO ad_impressions_per_week AS
SELECT
    toMonday(event_time, {{SETTLEMENT_TZ}}) AS week,
    creator_id,
    video_id,
    ad_id,
    toUInt64(count()) AS impressions
FROM raw_events
WHERE type = 'ad_impression' AND outcome = 'counted'
GROUP BY week, creator_id, video_id, ad_id
