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
  USER_JOBS: '/api/users/jobs',
  USER_JOB_STATS: '/api/users/jobs/stats',
  CANCEL_JOB: (jobId) => `/api/users/jobs/${encodeURIComponent(jobId)}/cancel`,
};

export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'];

// Jobs in these states can still be cancelled; the API answers 409 otherwise.
export const CANCELLABLE_STATUSES = ['pending', 'running'];
