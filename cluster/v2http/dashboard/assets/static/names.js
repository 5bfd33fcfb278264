// DNS names of registrations, as package discovery makes them
// (Config.Name, ServiceNames): the key's segments below the zone's
// directory reversed, lowercased and escaped as miekg/dns prints them.

function label(s) {
  let out = '';
  const bytes = new TextEncoder().encode(s);
  for (let c of bytes) {
    if (c >= 65 && c <= 90) c += 32;
    const ch = String.fromCharCode(c);
    if ('. \'@;()"\\'.includes(ch)) out += '\\' + ch;
    else if (c < 32 || c > 126) out += '\\' + String(c).padStart(3, '0');
    else out += ch;
  }
  return out;
}

// instanceNames gives, for a key below dir, the instance's DNS name, its
// service (relative to the zone), the service's name and SRV name; null
// for a key outside dir.
export function instanceNames(key, dir, zone) {
  if (!key.startsWith(dir + '/')) return null;
  const segs = key.slice(dir.length + 1).split('/');
  const labs = segs.slice().reverse().map(label);
  const suffix = zone === '.' ? '' : zone;
  const name = labs.join('.') + '.' + suffix;
  const rest = labs.slice(1);
  const service = rest.join('.');
  if (rest.length === 0) return { name, instance: labs[0], service: '', serviceName: suffix || '.', srvName: '' };
  const srvRest = rest.slice(1).join('.');
  const srvName = '_' + rest[0] + '._tcp.' + (srvRest ? srvRest + '.' : '') + suffix;
  return { name, instance: labs[0], service, serviceName: service + '.' + suffix, srvName };
}
