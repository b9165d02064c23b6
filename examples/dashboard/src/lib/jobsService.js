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
  // The detail (GET /api/users/jobs/{id}) carries more than the list.
  for (const key of [
    'parameters',
    'attempts',
    'progress',
    'progress_message',
    'result',
    'error',
    'started_at',
    'finished_at',
  ]) {
    if (job[key] !== undefined) result[key] = job[key];
  }
  return result;
}

export const jobsService = {
  /**
   * One page of the logged-in user's jobs, newest first.
   * Options: status (string or array), limit (1..1000, API default 100), cursor,
   * etag (of an earlier answer to the same query).
   * Returns {jobs, total, nextCursor, etag}, or {notModified: true} when the
   * API answered 304 to the etag.
   */
  async getUserJobs({ status, limit, cursor, etag } = {}) {
    const data = await apiRequest(API_ENDPOINTS.USER_JOBS, {
      query: { status, limit, cursor },
      etag,
    });
    if (data.notModified) return data;
    if (!Array.isArray(data.jobs)) {
      throw new Error('Unexpected response from the API: "jobs" is missing');
    }
    return {
      jobs: data.jobs.map(transformJob),
      total: data.total,
      nextCursor: data.next_cursor ?? null,
      etag: data.etag,
    };
  },

  /**
   * Counts per status: {stats: {total, pending, running, completed, failed, cancelled}, etag},
   * or {notModified: true} when the API answered 304 to the etag.
   */
  async getStats({ etag } = {}) {
    const data = await apiRequest(API_ENDPOINTS.USER_JOB_STATS, { etag });
    if (data.notModified) return data;
    if (!data.stats) {
      throw new Error('Unexpected response from the API: "stats" is missing');
    }
    return { stats: data.stats, etag: data.etag };
  },

  /** One job with everything the API knows of it (progress, result, error, timings). */
  async getJob(id) {
    const data = await apiRequest(API_ENDPOINTS.JOB(id));
    return transformJob(data.job);
  },

  /** The job types a submit may name: [{name, description, parameters_schema}]. */
  async getJobTypes() {
    const data = await apiRequest(API_ENDPOINTS.JOB_TYPES);
    return Array.isArray(data.job_types) ? data.job_types : [];
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
