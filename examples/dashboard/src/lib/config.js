// Base URL of the jobs API. NEXT_PUBLIC_* variables are inlined into the
// browser bundle at build time, so set it before `npm run build`.
export const API_BASE_URL = (
  process.env.NEXT_PUBLIC_API_URL || 'http://localhost:8000'
).replace(/\/+$/, '');

export const API_ENDPOINTS = {
  LOGIN: '/api/auth/login',
  LOGOUT: '/api/auth/logout',
  REGISTER: '/api/auth/register',
  ME: '/api/users/me',
  HEALTH: '/healthz',
  JOB_TYPES: '/api/job-types',
  USER_JOBS: '/api/users/jobs',
  USER_JOB_STATS: '/api/users/jobs/stats',
  JOB_EVENTS: '/api/users/jobs/events',
  JOB: (jobId) => `/api/users/jobs/${encodeURIComponent(jobId)}`,
  CANCEL_JOB: (jobId) => `/api/users/jobs/${encodeURIComponent(jobId)}/cancel`,
};

export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'];

// Jobs in these states can still be cancelled; the API answers 409 otherwise.
export const CANCELLABLE_STATUSES = ['pending', 'running'];

// Rows per page: the API's default page size.
export const PAGE_SIZE = 100;
// The API's largest page: a refresh asks for every shown row at once, up to this many.
export const MAX_PAGE_SIZE = 1000;

// How often the open dashboard asks for changes while its tab is visible and the event stream
// is down. An unchanged list or total costs the API a 304 with no body.
export const POLL_INTERVAL_MS = 1500;

// While the event stream is up, the list and totals are still asked for this often: a
// connection that died without a word (a proxy dropping it) raises no error in the browser.
export const SAFETY_REFRESH_MS = 60_000;

// A refused event stream (401, 429, 5xx) is tried again after this long, doubling up to the
// maximum while it keeps failing; meanwhile the dashboard polls.
export const STREAM_RETRY_MS = 2_000;
export const STREAM_RETRY_MAX_MS = 60_000;

// Running rows whose progress is fetched on a refresh without the stream (the list carries
// no progress; the stream's job events do).
export const MAX_PROGRESS_ROWS = 20;
