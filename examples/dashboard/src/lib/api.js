import { API_BASE_URL, API_ENDPOINTS } from './config';

/**
 * Error thrown for any failed API call.
 * `status` is 0 when the request never got an answer; `kind` then says why:
 * 'unreachable' (nothing answered) or 'blocked' (the API answered, but the
 * browser would not let this page read it: CORS, or another host name).
 */
export class ApiError extends Error {
  constructor(message, status, body = null, kind = 'http') {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.kind = kind;
  }
}

// Pydantic's wording for a few checks, said the way a person would.
const READABLE_MESSAGES = [
  [/^String should match pattern .*/, 'contains characters that are not allowed'],
  [/^Value error, /, ''],
  [/^Input should be a valid number.*/, 'must be a number'],
  [/^Input should be a valid integer.*/, 'must be a whole number'],
  [/^Input should be a valid boolean.*/, 'must be yes or no'],
  [/^Extra inputs are not permitted$/, 'is not a known field'],
  [/^Field required$/, 'is required'],
  [/^Input should be /, 'must be '],
  [/^String should have at least 1 character$/, 'is required'],
  [/^String should have at least (\d+) characters?$/, 'must be at least $1 characters long'],
  [/^String should have at most (\d+) characters?$/, 'must be at most $1 characters long'],
  [/^value is not a valid email address: ?/, 'is not a valid email address: '],
];

const FIELD_LABELS = {
  job_name: 'Name',
  job_type: 'Type',
  email: 'Email',
  password: 'Password',
  full_name: 'Full name',
};

function readableMessage(msg) {
  let text = String(msg);
  for (const [pattern, replacement] of READABLE_MESSAGES) {
    if (pattern.test(text)) {
      text = text.replace(pattern, replacement);
      break;
    }
  }
  return text.replace(/[:\s]+$/, '');
}

function fieldLabel(loc) {
  // loc is ["body", "parameters", "seconds"] or ["body", "job_type"]; the body itself has no label.
  const path = (Array.isArray(loc) ? loc : []).filter((part) => part !== 'body');
  if (path.length === 0) return '';
  const last = String(path[path.length - 1]);
  return FIELD_LABELS[last] ?? last.replace(/_/g, ' ');
}

/** One readable line for one field error of a 422: "seconds: must be less than or equal to 3600". */
export function readableFieldError(item) {
  if (typeof item === 'string') return item;
  if (!item || !item.msg) return null;
  const label = fieldLabel(item.loc);
  const message = readableMessage(item.msg);
  return label ? `${label}: ${message}` : message;
}

/**
 * Turn an API error body ({"detail": string | list, "success": false}) into a
 * readable message. Validation errors (a list of {loc, msg, type}) become one
 * "field: what is wrong" per field, without patterns or pydantic's prefixes.
 */
export function errorMessageFromBody(body, status) {
  const detail = body && body.detail;
  if (typeof detail === 'string' && detail.trim()) {
    return detail;
  }
  if (Array.isArray(detail)) {
    const messages = detail.map(readableFieldError).filter(Boolean);
    if (messages.length > 0) {
      return messages.join('; ');
    }
  }
  return `Request failed with status ${status}`;
}

function buildUrl(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    // Arrays become repeated parameters: ?status=pending&status=running
    for (const item of Array.isArray(value) ? value : [value]) {
      params.append(key, String(item));
    }
  }
  const search = params.toString();
  return `${API_BASE_URL}${path}${search ? `?${search}` : ''}`;
}

function apiHost() {
  try {
    return new URL(API_BASE_URL).hostname;
  } catch {
    return '';
  }
}

/**
 * A fetch that failed without an answer is either "nothing listens there" or
 * "the API answered but the browser hid the answer from this page" (CORS, or
 * the page opened on another host name). A no-cors request tells them apart:
 * it succeeds, with an unreadable answer, whenever the server answers at all.
 */
async function explainNetworkFailure() {
  let answered = false;
  try {
    await fetch(`${API_BASE_URL}${API_ENDPOINTS.HEALTH}`, { mode: 'no-cors', cache: 'no-store' });
    answered = true;
  } catch {
    answered = false;
  }
  if (!answered) {
    return new ApiError(
      `Network error: could not reach the API at ${API_BASE_URL}. Is it running?`,
      0,
      null,
      'unreachable',
    );
  }
  const here = typeof window === 'undefined' ? '' : window.location.origin;
  const otherHost =
    typeof window !== 'undefined' && apiHost() && window.location.hostname !== apiHost();
  const hint = otherHost
    ? ` This page was opened at ${here} but the API is at ${API_BASE_URL}: open the dashboard on the same host name as the API (see the README).`
    : ` Add ${here} to the API's CORS_ORIGINS.`;
  return new ApiError(
    `The API at ${API_BASE_URL} answered, but the browser refused to let this page read it (CORS).${hint}`,
    0,
    null,
    'blocked',
  );
}

/**
 * Call the API with the session cookie attached and return the parsed JSON body.
 * With `etag`, the request carries If-None-Match and a 304 returns
 * `{ notModified: true }`. A 2xx body comes back with its ETag as `etag`.
 * Throws ApiError on network failure or a non-2xx answer.
 */
export async function apiRequest(path, { method = 'GET', body, query, etag } = {}) {
  const headers = { Accept: 'application/json' };
  // no-store: the browser's cache must not answer for the API; the ETag is ours to send.
  const init = { method, headers, credentials: 'include', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (etag) {
    headers['If-None-Match'] = etag;
  }

  let response;
  try {
    response = await fetch(buildUrl(path, query), init);
  } catch {
    throw await explainNetworkFailure();
  }

  if (response.status === 304) {
    return { notModified: true, etag: response.headers.get('ETag') || etag };
  }

  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }

  if (!response.ok) {
    throw new ApiError(errorMessageFromBody(data, response.status), response.status, data);
  }
  if (data === null || typeof data !== 'object') {
    throw new ApiError('Unexpected response from the API (not JSON)', response.status);
  }
  Object.defineProperty(data, 'etag', { value: response.headers.get('ETag'), enumerable: false });
  return data;
}
