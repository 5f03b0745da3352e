-- Writes every accepted positional event of raw_events back into resume_positions.
CREATE MATERIALIZED VIEW IF NOT EXISTS resume_positions_mv TO resume_positions AS
SELECT
    viewer_id,
    video_id,
    argMax(if(type = 'end', 0, position_ms), event_time) AS position_ms,
    max(event_time) AS updated_at
FROM raw_events
WHERE outcome != 'rejected' AND type IN ('play', 'progress', 'pause', 'seek', 'end')
GROUP BY viewer_id, video_id
