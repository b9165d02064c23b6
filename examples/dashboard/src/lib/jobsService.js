import { apiRequest } from './api';
import { API_ENDPOINTS } from './config';

/** Map an API job ({job_id, job_name, ...}) to the dashboard's shape ({id, name, ...}). */
export function transformJob(job) {
  const result = {
    id: job.job_id,
    name: job.job_name,
    type: job.job_type,
    status: job.status,
    created_at: job.created_at,
    updated_at: job.updated_at,
  };
  if (job.parameters !== undefined) {
    result.parameters = job.parameters;
  }
  return result;
}

export const jobsService = {
  /**
   * The logged-in user's jobs, newest first.
   * Options: status (string or array), limit (1..1000, API default 100), cursor.
   * Returns the first page only; see the README for pagination.
   */
  async getUserJobs({ status, limit, cursor } = {}) {
    const data = await apiRequest(API_ENDPOINTS.USER_JOBS, {
      query: { status, limit, cursor },
    });
    if (!Array.isArray(data.jobs)) {
      throw new Error('Unexpected response from the API: "jobs" is missing');
    }
    return data.jobs.map(transformJob);
  },

  /** Counts per status: {total, pending, running, completed, failed, cancelled}. */
  async getStats() {
    const data = await apiRequest(API_ENDPOINTS.USER_JOB_STATS);
    if (!data.stats) {
      throw new Error('Unexpected response from the API: "stats" is missing');
    }
    return data.stats;
  },

  /** Submit a new job. Returns the created job in the dashboard's shape. */
  async submitJob({ name, type, parameters }) {
    const body = { job_name: name, job_type: type };
    if (parameters !== undefined) {
      body.parameters = parameters;
    }
    const data = await apiRequest(API_ENDPOINTS.USER_JOBS, { method: 'POST', body });
    return transformJob(data.job);
  },

  /** Cancel a pending or running job. The API answers 409 if it already finished. */
  async cancelJob(id) {
    const data = await apiRequest(API_ENDPOINTS.CANCEL_JOB(id), { method: 'POST' });
    return transformJob(data.job);
  },
};
