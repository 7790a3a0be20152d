/**
 * Who may do what to a region. Owner and admins have read-write; a grant gives its user
 * read ('r', bit 1) or read-write ('rw', bits 1|2); everyone else has nothing and does not
 * even see the region in a listing.
 */
import { NativeEntry } from '../unit/native';
import { RIGHTS_NONE, RIGHTS_READ, RIGHTS_READ_WRITE } from '../wire/protocol';

export interface Principal {
  user: string;
  admin: boolean;
}

export function rightsFor(principal: Principal, entry: Pick<NativeEntry, 'owner' | 'grants'>): number {
  if (principal.admin || entry.owner === principal.user) return RIGHTS_READ_WRITE;
  let rights = RIGHTS_NONE;
  for (const grant of entry.grants) if (grant.user === principal.user) rights |= grant.rights;
  if ((rights & RIGHTS_READ_WRITE) === RIGHTS_READ_WRITE) return RIGHTS_READ_WRITE;
  return rights & RIGHTS_READ ? RIGHTS_READ : RIGHTS_NONE;
}
