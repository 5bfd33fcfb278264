// Cluster view: this member's raft view and every member's health and
// serving-certificate expiry (/mod/dashboard/api/cluster, polled: raft
// status is not in the key space, so there is nothing to watch).

import { getJSON } from './api.js';
import { h, $, fmtDuration, fmtTime, setServerNow, serverNow } from './util.js';

const POLL_MS = 3000;

export class ClusterView {
  constructor(onInfo) {
    this.onInfo = onInfo;
    this.timer = 0;
    this.last = null;
  }

  async refresh() {
    clearTimeout(this.timer);
    try {
      const c = await getJSON('/mod/dashboard/api/cluster');
      setServerNow(c.now);
      this.last = c;
      this.onInfo(c);
      this.render(c);
    } catch (err) {
      $('#cluster-note').textContent = 'Cannot read the cluster status: ' + err.message;
    }
    this.timer = setTimeout(() => this.refresh(), POLL_MS);
  }

  render(c) {
    const card = (label, value, cls) => h('div', { class: 'card' + (cls ? ' ' + cls : '') },
      h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
    $('#cluster-cards').replaceChildren(
      card('Leader', c.leaderName || (c.leaderId ? c.leaderId : 'none'), c.leaderId ? '' : 'bad'),
      card('This member', `${c.name} (${c.state.replace('State', '').toLowerCase()})`),
      card('Raft term', String(c.term)),
      card('Commit / applied index', `${c.commitIndex} / ${c.appliedIndex}`),
      card('Leader for', c.leaderStartTime && !c.leaderStartTime.startsWith('0001') ? fmtDuration(serverNow() - Date.parse(c.leaderStartTime)) : '\u2014'),
      card('Members', String(c.members.length)),
    );
    if (c.fault) $('#cluster-cards').append(card('Fault', c.fault, 'bad'));
    if (c.diskFull) $('#cluster-cards').append(card('Disk', c.diskFull, 'bad'));
    const rows = c.members.map(m => {
      const health = m.health === 'true' ? 'healthy' : m.health === 'false' ? 'unhealthy' : 'unknown';
      let cert = '\u2014';
      let certCls = '';
      if (m.certNotAfter) {
        const left = Date.parse(m.certNotAfter) - serverNow();
        cert = `in ${fmtDuration(left)} (${fmtTime(m.certNotAfter)})`;
        certCls = left < 0 ? 'bad' : left < 7 * 86400e3 ? 'warn' : '';
      }
      return h('tr', { 'data-member': m.name },
        h('td', { 'data-label': 'Name' }, h('strong', null, m.name || '(not started)'), m.self ? h('span', { class: 'tag' }, 'serving this page') : null),
        h('td', { 'data-label': 'Role' }, m.leader ? h('span', { class: 'tag leader' }, 'leader') : 'follower'),
        h('td', { 'data-label': 'Health', title: m.error || '' }, h('span', { class: 'dot ' + health }), health,
          m.latencyMs ? h('span', { class: 'muted' }, ` ${m.latencyMs.toFixed(1)} ms`) : null,
          m.error ? h('div', { class: 'muted small' }, m.error) : null),
        h('td', { 'data-label': 'Certificate', class: certCls }, cert),
        h('td', { 'data-label': 'Client URLs' }, m.clientURLs.join(' ')),
        h('td', { 'data-label': 'Peer URLs' }, m.peerURLs.join(' ')),
        h('td', { 'data-label': 'ID', class: 'mono' }, m.id),
      );
    });
    $('#members tbody').replaceChildren(...rows);
    $('#cluster-note').textContent = c.probed
      ? `Health and certificates as ${c.name} sees them (it asks each member's /health over mTLS), every ${POLL_MS / 1000}s.`
      : 'Other members are not probed by this member.';
  }
}
