import { AuthProvider } from '@/context/AuthContext';
import './globals.css';

export const metadata = {
  title: 'My Jobs',
  description: 'Reference dashboard for the my jobs API',
};

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>
        <AuthProvider>{children}</AuthProvider>
      </body>
    </html>
  );
}
