-- Video metadata registered by creators.
CREATE TABLE IF NOT EXISTS videos
(
    video_id String COMMENT 'Video id',
    creator_id String COMMENT 'User id of the creator who registered it',
    title String COMMENT 'Title',
    duration_ms UInt64 COMMENT 'Duration (ms)',
    created_at DateTime64(3, 'UTC') COMMENT 'When it was registered',
    updated_at DateTime64(3, 'UTC') COMMENT 'Version of this row; the latest wins',
    deleted UInt8 DEFAULT 0 COMMENT '1 when the video was removed'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY video_id
COMMENT 'Videos (read with FINAL or argMax by updated_at)'
