'use client';

import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { authService } from '@/lib/authService';

const AuthContext = createContext(null);

export function AuthProvider({ children }) {
  const [user, setUser] = useState(null);
  const [loading, setLoading] = useState(true);

  // Restore the session from the cookie on first load.
  useEffect(() => {
    let active = true;
    authService
      .me()
      .then((currentUser) => {
        if (active) setUser(currentUser);
      })
      .catch(() => {
        // API unreachable or failing: treat as signed out. The login page
        // will show the real error when the user tries to log in.
        if (active) setUser(null);
      })
      .finally(() => {
        if (active) setLoading(false);
      });
    return () => {
      active = false;
    };
  }, []);

  const login = useCallback(async (email, password) => {
    const loggedInUser = await authService.login(email, password);
    setUser(loggedInUser);
    return loggedInUser;
  }, []);

  const logout = useCallback(async () => {
    try {
      await authService.logout();
    } catch (err) {
      // The cookie is HttpOnly, so only the API can clear it. Forget the user
      // locally anyway; the next page load re-checks the session.
      console.warn('Logout request failed:', err.message);
    } finally {
      setUser(null);
    }
  }, []);

  // For callers that got a 401 from the API: the session is gone.
  const clearSession = useCallback(() => setUser(null), []);

  const value = useMemo(
    () => ({ user, loading, login, logout, clearSession }),
    [user, loading, login, logout, clearSession],
  );

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth() {
  const context = useContext(AuthContext);
  if (!context) {
    throw new Error('useAuth must be used inside <AuthProvider>');
  }
  return context;
}
