import LoginPage from './LoginPage';

export const metadata = {
  title: 'Log in · My Jobs',
};

export default function Page() {
  return <LoginPage />;
}
