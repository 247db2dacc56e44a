// Organization and workspace roles (docs/api.md "Roles and who may do what"): their labels,
// what each allows, and what the signed-in person may do in the console.

export const ORG_ROLES = [
  { value: 'user', label: 'User', text: 'Basic access to the organization.' },
  { value: 'developer', label: 'Developer', text: 'Can manage API keys and integrations.' },
  { value: 'billing', label: 'Billing', text: 'Access to billing information.' },
  { value: 'admin', label: 'Admin', text: 'Full control over the organization and members (developer + billing).' },
];

export const WORKSPACE_ROLES = [
  { value: 'workspace_user', label: 'Workspace User', text: 'Can use the workspace.' },
  { value: 'workspace_developer', label: 'Workspace Developer', text: 'Can also create and manage the workspace’s API keys.' },
  { value: 'workspace_admin', label: 'Workspace Admin', text: 'Can also manage the workspace’s members.' },
  { value: 'workspace_billing', label: 'Workspace Billing', text: 'Can see the workspace’s billing and usage.' },
];

const label = (list, v) => (list.find((r) => r.value === v) || { label: v }).label;
export const orgRoleLabel = (v) => label(ORG_ROLES, v);
export const workspaceRoleLabel = (v) => label(WORKSPACE_ROLES, v);
export const orgRoleText = (v) => (ORG_ROLES.find((r) => r.value === v) || {}).text || '';
export const workspaceRoleText = (v) => (WORKSPACE_ROLES.find((r) => r.value === v) || {}).text || '';

export const myRole = (session) => (session.current_organization ? session.current_organization.role : null);
export const isAdmin = (session) => myRole(session) === 'admin';

// The workspace palette (docs/api.md "Workspaces"), with names for screen readers.
export const PALETTE = [
  { color: '#6C5BB9', name: 'Purple' },
  { color: '#D97757', name: 'Clay' },
  { color: '#4E8FD4', name: 'Blue' },
  { color: '#3F9A6E', name: 'Green' },
  { color: '#C2554D', name: 'Red' },
  { color: '#C48A2C', name: 'Amber' },
  { color: '#8A6B4E', name: 'Brown' },
  { color: '#5E7386', name: 'Slate' },
  { color: '#B5548C', name: 'Pink' },
  { color: '#2F8F8F', name: 'Teal' },
];
export const colorName = (c) => (PALETTE.find((p) => p.color.toLowerCase() === String(c || '').toLowerCase()) || { name: c || 'No colour' }).name;
