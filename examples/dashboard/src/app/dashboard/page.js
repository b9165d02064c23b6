import DashboardPage from './DashboardPage';

export const metadata = {
  title: 'Dashboard · My Jobs',
};

export default function Page() {
  return <DashboardPage />;
}
