import { apiRequest, ApiError } from './api';
import { API_ENDPOINTS } from './config';

export const authService = {
  /** Log in; the API sets the HttpOnly `access_token` cookie. Returns the user. */
  async login(email, password) {
    const data = await apiRequest(API_ENDPOINTS.LOGIN, {
      method: 'POST',
      body: { email, password },
    });
    return data.user;
  },

  /** Create an account (it does not log in). Returns the new user. */
  async register({ email, password, fullName }) {
    const body = { email, password };
    if (fullName) body.full_name = fullName;
    const data = await apiRequest(API_ENDPOINTS.REGISTER, { method: 'POST', body });
    return data.user;
  },

  /** Log out; the API revokes the token and expires the cookie. */
  async logout() {
    await apiRequest(API_ENDPOINTS.LOGOUT, { method: 'POST' });
  },

  /** The current user, or null when there is no valid session. */
  async me() {
    try {
      const data = await apiRequest(API_ENDPOINTS.ME);
      return data.user || null;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        return null;
      }
      throw err;
    }
  },
};
