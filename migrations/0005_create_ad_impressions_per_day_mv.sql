-- Feeds ad_impressions_per_day from every insert into raw_events.
CREATE MATERIALIZED VIEW IF NOT EXISTS ad_impressions_per_day_mv TO ad_impressions_per_day AS
SELECT
    toDate(event_time, {{SETTLEMENT_TZ}}) AS day,
    creator_id,
    video_id,
    ad_id,
    toUInt64(count()) AS impressions
FROM raw_events
WHERE type = 'ad_impression' AND outcome = 'counted'
GROUP BY day, creator_id, video_id, ad_id
