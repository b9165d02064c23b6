import { API_BASE_URL } from './config';

/** Error thrown for any failed API call. `status` is 0 when the request never got an answer. */
export class ApiError extends Error {
  constructor(message, status, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/**
 * Turn an API error body ({"detail": string | list, "success": false}) into a
 * readable message. FastAPI validation errors put a list of
 * {loc, msg, type} objects in `detail`; their `msg` fields are joined.
 */
export function errorMessageFromBody(body, status) {
  const detail = body && body.detail;
  if (typeof detail === 'string' && detail.trim()) {
    return detail;
  }
  if (Array.isArray(detail)) {
    const messages = detail
      .map((item) => (typeof item === 'string' ? item : item && item.msg))
      .filter(Boolean);
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

/**
 * Call the API with the session cookie attached and return the parsed JSON body.
 * Throws ApiError on network failure or a non-2xx answer.
 */
export async function apiRequest(path, { method = 'GET', body, query } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'include', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(buildUrl(path, query), init);
  } catch {
    throw new ApiError(
      `Network error: could not reach the API at ${API_BASE_URL}. Is it running?`,
      0,
    );
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
  if (data === null) {
    throw new ApiError('Unexpected response from the API (not JSON)', response.status);
  }
  return data;
}
