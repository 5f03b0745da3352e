/**
 * Redis key layout of the edge. Every key of a video carries the hash tag
 * `{v:<videoId>}`, so one video's state lives in one Redis Cluster slot and the
 * ingest script can touch it atomically. IP limits have their own slot.
 */
const v = (videoId: string) => `cs:{v:${videoId}}`

export const keys = {
  /**
   * String with TTL: "<event ms>:<position ms>", the viewer's latest resume position on the
   * video. A key per viewer, so that it expires (RESUME_CACHE_HOURS): resume_positions in
   * ClickHouse keeps every position for good, and Redis only the fresh ones.
   */
  resume: (videoId: string, viewerId: string) => `${v(videoId)}:r:${viewerId}`,
  /** String counter: counted views of the video since the last reconciliation. */
  liveViews: (videoId: string) => `${v(videoId)}:views`,
  /**
   * Hash: event field (the id's 16 bytes in Z85, see eventField) -> "<request id>|<outcome
   * letter>|<reason>|<credited ms>" (the decision taken for it; until 5 December the id's text
   * and the outcome's word), and "c:<request id>" -> '1' / '0': the request reached ClickHouse
   * / failed (mark.lua).
   */
  sessionEvents: (videoId: string, sessionId: string) => `${v(videoId)}:s:${sessionId}:ev`,
  /** Hash: the session's counting state (last event time, credited watch time, viewed flag, ads seen). */
  sessionState: (videoId: string, sessionId: string) => `${v(videoId)}:s:${sessionId}:st`,
  /** String with TTL: the viewer had a counted view of the video within the dedup window. */
  viewerWindow: (videoId: string, viewerId: string) => `${v(videoId)}:vw:${viewerId}`,
  /** Sorted set: counted views from one IP within the window (score = time). */
  ipWindow: (videoId: string, ip: string) => `${v(videoId)}:ip:${ip}`,
  /** String with TTL: the viewer had a counted impression of the ad on the video within the window. */
  adViewerWindow: (videoId: string, adId: string, viewerId: string) => `${v(videoId)}:aw:${adId}:${viewerId}`,
  /**
   * String: a request's events reached ClickHouse, as marked until 3 December (kept until the
   * token expired, hours after the records naming the request). Now a field of sessionEvents;
   * these are only read, until the last of them has expired.
   */
  legacyMark: (videoId: string, requestId: string) => `${v(videoId)}:c:${requestId}`,
  /** Token bucket of one client IP, in its own slot. */
  ipBucket: (ip: string) => `cs:{ip:${ip}}:rl`,
}
