// The video visit (the embedded provider): camera and microphone, the
// signalling connection to carefront, and one RTCPeerConnection to each
// other participant (a mesh of up to four). carefront relays the
// signalling only once the clinician admits this participant, so until
// then the page shows the waiting room and no media flows.
//
// The participant who is admitted later starts the connection to each
// one already in (they answer). After a page reload within the visit the
// page has a fresh visit token and rejoins on its own; a lost media path
// is restarted (restartIce) a few seconds after it goes "disconnected".
(() => {
  const root = document.getElementById('visit');
  if (!root) return;
  const cfg = JSON.parse(root.dataset.config);
  const t = JSON.parse(document.getElementById('visit-strings').textContent);
  const $ = (id) => document.getElementById(id);
  const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ''));
  const status = $('visit-status');
  const announce = (msg) => {
    // Cleared first so the same words are read again.
    $('visit-announce').textContent = '';
    setTimeout(() => { $('visit-announce').textContent = msg; }, 50);
  };
  const problem = (msg) => {
    $('visit-problem-text').textContent = msg;
    $('visit-problem').hidden = !msg;
  };
  const relayOnly = new URLSearchParams(location.search).get('relay') === '1';
  // With --video-provider livekit the media go through a LiveKit server
  // (its client, LivekitClient, is loaded before this script); carefront
  // still runs the waiting room and hands over a LiveKit token only on
  // admission.
  const liveKit = cfg.provider === 'livekit';
  let lkRoom = null;

  const peers = new Map(); // connection id -> {id, name, role, pc, initiator, el, restarting, pending}
  let ws;
  let me = '';
  let stream = null;
  let videoTrack = null;
  let finished = false; // moved, ended or left: no rejoin
  let dataLevel = 0; // 0 normal, 1 low resolution, 2 sound only
  let poorSamples = 0;
  let keepAlive = null;
  const state = { admitted: false };

  // For the browser tests and for support: the connections and a way to
  // force an ICE restart.
  window.carefrontVisit = {
    peers,
    state,
    restart: () => peers.forEach((p) => restart(p)),
  };

  const send = (msg) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  };

  const roleName = (role) => t[`video.role.${role}`] || role;

  async function startMedia() {
    const video = { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' };
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video });
    } catch (e) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        problem(t['video.media.audio']);
      } catch (e2) {
        stream = null;
        problem(t['video.media.none']);
      }
    }
    if (stream) {
      $('visit-local').srcObject = stream;
      [videoTrack] = stream.getVideoTracks();
    }
    $('visit-camera').hidden = !videoTrack;
    $('visit-data').hidden = !videoTrack;
    if (videoTrack && navigator.mediaDevices.enumerateDevices) {
      const devices = await navigator.mediaDevices.enumerateDevices();
      $('visit-switch').hidden = devices.filter((d) => d.kind === 'videoinput').length < 2;
    }
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(scheme + location.host + cfg.ws);
    ws.addEventListener('open', () => send({ type: 'hello', token: cfg.token }));
    let queue = Promise.resolve();
    ws.addEventListener('message', (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      // One at a time: an offer is applied before its candidates.
      queue = queue.then(() => onMessage(msg)).catch((e) => console.error('visit:', e));
    });
    ws.addEventListener('close', () => {
      if (finished) return;
      // The token is spent: a reload gets a fresh one and rejoins.
      problem(t['video.problem.connection']);
      setTimeout(() => location.reload(), 2000);
    });
  }

  async function onMessage(msg) {
    switch (msg.type) {
      case 'welcome':
        me = msg.you;
        if (msg.state === 'waiting') {
          $('visit-waiting').hidden = false;
          $('visit-call').hidden = true;
          status.textContent = t['video.waiting.status'];
        } else {
          $('visit-waiting').hidden = true;
        }
        if (msg.notice) showNotice(msg.notice);
        break;
      case 'admitted':
        state.admitted = true;
        $('visit-waiting').hidden = true;
        $('visit-call').hidden = false;
        status.textContent = t['video.in.status'];
        if (cfg.role !== 'clinician') announce(t['video.admitted']);
        if (msg.media && msg.media.provider === 'livekit') await joinLiveKit(msg.media);
        else for (const p of msg.peers) if (!peers.has(p.id)) addPeer(p, starts(p.id));
        startKeepAlive();
        break;
      case 'peer-joined':
        if (liveKit) {
          announce(fill(t['video.joined'], { name: msg.peer.name }));
          break;
        }
        if (!peers.has(msg.peer.id)) addPeer(msg.peer, starts(msg.peer.id));
        else Object.assign(peers.get(msg.peer.id), { name: msg.peer.name, role: msg.peer.role });
        labelPeer(peers.get(msg.peer.id));
        announce(fill(t['video.joined'], { name: msg.peer.name }));
        break;
      case 'peer-left': {
        const p = peers.get(msg.id);
        if (p) {
          removePeer(p);
          announce(fill(t['video.left'], { name: p.name }));
        }
        break;
      }
      case 'signal':
        await onSignal(msg.from, msg.data);
        break;
      case 'waiting':
        showWaiting(msg.list);
        break;
      case 'notice':
        showNotice(msg.text);
        announce(`${t['video.notice.from']} ${msg.text}`);
        break;
      case 'notice-sent':
        announce(t['video.host.notice.sent']);
        $('visit-notice-input').value = '';
        break;
      case 'call-me':
        problem(fill(t['video.host.callme'], { name: msg.name }));
        break;
      case 'call-me-sent':
        $('visit-call-me-sent').hidden = false;
        break;
      case 'moved':
        finish(t['video.moved']);
        break;
      case 'ended':
        finish(cfg.role === 'clinician' ? t['video.host.ended'] : t['video.ended']);
        if ($('visit-wrapup')) $('visit-wrapup').hidden = false;
        break;
      case 'error':
        if (msg.code === 'token' || msg.code === 'ended' || msg.code === 'no-hello') finish(msg.message);
        else status.textContent = msg.message;
        break;
      default:
    }
  }

  function showNotice(text) {
    $('visit-notice-text').textContent = text;
    $('visit-notice').hidden = false;
  }

  function showWaiting(list) {
    const ul = $('visit-waiting-list');
    if (!ul) return;
    ul.replaceChildren();
    $('visit-waiting-none').hidden = list.length > 0;
    for (const w of list) {
      const li = document.createElement('li');
      li.className = 'cf-waiting';
      const min = Math.max(0, Math.round((Date.now() - Date.parse(w.since)) / 60000));
      const text = document.createElement('span');
      text.textContent = fill(t['video.host.waiting.item'], {
        name: w.name, role: roleName(w.role), wait: fill(t['video.wait.minutes'], { min }),
      });
      li.append(text);
      if (w.role !== 'guest') {
        const tag = document.createElement('span');
        tag.className = w.checkedIn ? 'cf-tag' : 'cf-tag cf-tag--overdue';
        tag.textContent = w.checkedIn ? t['video.host.checkedin'] : t['video.host.notcheckedin'];
        li.append(' ', tag);
      }
      const admit = document.createElement('button');
      admit.type = 'button';
      admit.className = 'usa-button margin-left-1';
      admit.textContent = t['video.host.admit'];
      admit.setAttribute('aria-label', `${t['video.host.admit']}: ${w.name}`);
      admit.addEventListener('click', () => {
        admit.disabled = true;
        send({ type: 'admit', who: w.id });
      });
      li.append(' ', admit);
      ul.append(li);
    }
  }

  // starts says whether this side makes the offers to a peer: the side
  // with the smaller connection id, so two people let in at once never
  // both offer (both sides apply the same rule).
  const starts = (id) => me < id;

  function addPeer(p, initiator) {
    const pc = new RTCPeerConnection({ iceServers: cfg.ice, iceTransportPolicy: relayOnly ? 'relay' : 'all' });
    const entry = { ...p, pc, initiator, restarting: false, pending: [], el: null, disconnectedAt: 0 };
    peers.set(p.id, entry);
    if (stream) {
      for (const track of stream.getTracks()) pc.addTrack(track, stream);
    } else {
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    applyDataLevel(entry);
    const fig = document.createElement('figure');
    fig.className = 'cf-remote';
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    const cap = document.createElement('figcaption');
    fig.append(video, cap);
    $('visit-remotes').append(fig);
    entry.el = fig;
    labelPeer(entry);
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate) send({ type: 'signal', to: p.id, data: { candidate: e.candidate.toJSON() } });
    });
    pc.addEventListener('track', (e) => {
      if (video.srcObject !== e.streams[0]) {
        video.srcObject = e.streams[0];
        video.play().catch(() => {});
      }
    });
    pc.addEventListener('negotiationneeded', () => {
      if (entry.initiator) offer(entry);
    });
    pc.addEventListener('iceconnectionstatechange', () => {
      const s = pc.iceConnectionState;
      if (s === 'disconnected') {
        showReconnecting(true);
        // Often it comes back alone; if not, restart ICE.
        setTimeout(() => {
          if (pc.iceConnectionState === 'disconnected') restart(entry);
        }, 3000);
      } else if (s === 'failed') {
        restart(entry);
      } else if (s === 'connected' || s === 'completed') {
        applyDataLevel(entry);
        updateBanner();
      }
    });
    return entry;
  }

  function labelPeer(entry) {
    if (!entry || !entry.el) return;
    const name = entry.name || '';
    entry.el.querySelector('figcaption').textContent = entry.role ? `${name} (${roleName(entry.role)})` : name;
    entry.el.querySelector('video').setAttribute('aria-label', fill(t['video.peer.video'], { name }));
  }

  function removePeer(entry) {
    entry.pc.close();
    if (entry.el) entry.el.remove();
    peers.delete(entry.id);
    updateBanner();
  }

  async function offer(entry) {
    const o = await entry.pc.createOffer();
    await entry.pc.setLocalDescription(o);
    send({ type: 'signal', to: entry.id, data: { sdp: entry.pc.localDescription.toJSON() } });
  }

  async function onSignal(from, data) {
    if (data.restart) {
      // The other side asks this one, which started the connection, to
      // restart ICE.
      const started = peers.get(from);
      if (started && started.initiator) restart(started);
      return;
    }
    let entry = peers.get(from);
    if (!entry) {
      // Only an offer opens a connection; anything else from a peer
      // not (or no longer) here is late, and dropped.
      if (!data.sdp || data.sdp.type !== 'offer') return;
      entry = addPeer({ id: from, name: '', role: '' }, starts(from));
    }
    const { pc } = entry;
    if (data.sdp) {
      await pc.setRemoteDescription(data.sdp);
      if (data.sdp.type === 'offer') {
        await pc.setLocalDescription(await pc.createAnswer());
        send({ type: 'signal', to: from, data: { sdp: pc.localDescription.toJSON() } });
      } else {
        entry.restarting = false;
      }
      for (const c of entry.pending.splice(0)) await pc.addIceCandidate(c).catch(() => {});
      updateBanner();
    } else if (data.candidate) {
      if (!pc.remoteDescription) entry.pending.push(data.candidate);
      else await pc.addIceCandidate(data.candidate).catch(() => {});
    }
  }

  // restart asks for new ICE candidates (restartIce): the side that
  // started the connection makes the new offer.
  function restart(entry) {
    showReconnecting(true);
    if (!entry.initiator) {
      send({ type: 'signal', to: entry.id, data: { restart: true } });
      return;
    }
    entry.restarting = true;
    entry.pc.restartIce();
  }

  function showReconnecting(on) {
    const was = !$('visit-reconnecting').hidden;
    $('visit-reconnecting').hidden = !on;
    if (was && !on) announce(t['video.reconnected']);
  }

  function updateBanner() {
    let ok = true;
    peers.forEach((p) => {
      const s = p.pc.iceConnectionState;
      if (p.restarting || !(s === 'connected' || s === 'completed')) ok = false;
    });
    if (ok) showReconnecting(false);
  }

  // Data use: normal, lower resolution, then sound only.
  function applyDataLevel(entry) {
    const sender = entry.videoSender || entry.pc.getSenders().find((x) => x.track && x.track.kind === 'video');
    if (!sender) return;
    entry.videoSender = sender;
    const want = dataLevel === 2 ? null : videoTrack;
    if (sender.track !== want) sender.replaceTrack(want).catch(() => {});
    const params = sender.getParameters();
    if (!params.encodings || !params.encodings.length) return; // applied once connected
    params.encodings[0].scaleResolutionDownBy = dataLevel >= 1 ? 4 : 1;
    params.encodings[0].maxBitrate = dataLevel >= 1 ? 150000 : 900000;
    sender.setParameters(params).catch(() => {});
  }

  function setDataLevel(level, auto) {
    dataLevel = level;
    // LiveKit adapts the resolution itself; sound only pauses the video.
    if (lkRoom && videoTrack) videoTrack.enabled = level < 2;
    peers.forEach(applyDataLevel);
    const text = [t['video.data.normal'], t['video.data.low'], t['video.data.audio']][level];
    $('visit-data-now').textContent = auto ? `${t['video.data.auto']} ${text}` : text;
    announce($('visit-data-now').textContent);
  }

  // Connection quality from getStats: loss, bitrate and round-trip time
  // of what this page receives, every two seconds.
  const last = new Map();
  async function measure() {
    let worst = null;
    for (const p of peers.values()) {
      const stats = await p.pc.getStats();
      let lost = 0; let got = 0; let bytes = 0; let rtt = 0;
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp') {
          lost += s.packetsLost || 0;
          got += s.packetsReceived || 0;
          bytes += s.bytesReceived || 0;
        }
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime !== undefined) {
          rtt = s.currentRoundTripTime * 1000;
        }
      });
      const prev = last.get(p.id) || { lost: 0, got: 0, bytes: 0, at: performance.now() - 2000 };
      const now = performance.now();
      const dl = lost - prev.lost; const dg = got - prev.got;
      const q = {
        loss: dl + dg > 0 ? Math.round((100 * dl) / (dl + dg)) : 0,
        kbps: Math.round(((bytes - prev.bytes) * 8) / (now - prev.at)),
        rtt: Math.round(rtt),
      };
      last.set(p.id, { lost, got, bytes, at: now });
      if (!worst || q.loss > worst.loss || q.rtt > worst.rtt) worst = q;
    }
    const el = $('visit-quality');
    if (!worst) {
      el.textContent = t['video.quality.unknown'];
      return;
    }
    let level = 'good';
    if (worst.loss > 10 || worst.rtt > 600) level = 'poor';
    else if (worst.loss > 3 || worst.rtt > 300) level = 'fair';
    el.dataset.quality = level;
    el.textContent = `${t[`video.quality.${level}`]} (${fill(t['video.quality.detail'], worst)})`;
    // Automatic fallback after three poor readings in a row.
    poorSamples = level === 'poor' ? poorSamples + 1 : 0;
    if (poorSamples >= 3 && dataLevel < 2 && videoTrack) {
      poorSamples = 0;
      setDataLevel(dataLevel + 1, true);
    }
  }
  setInterval(() => { measure().catch(() => {}); updateBanner(); }, 2000);

  // A connected visit keeps the portal session alive (the idle timeout
  // is paused while the visit lasts).
  function startKeepAlive() {
    if (keepAlive || !cfg.keepalive) return;
    keepAlive = setInterval(() => {
      if (!state.admitted || finished) return;
      fetch(cfg.keepalive, { method: 'POST', credentials: 'same-origin' }).then(() => {
        document.dispatchEvent(new Event('carefront:active'));
      }).catch(() => {});
    }, 60000);
  }

  // joinLiveKit connects to the visit's LiveKit room with the token the
  // admission brought, publishes the camera and microphone, and shows
  // each other participant's tracks.
  async function joinLiveKit(media) {
    const LK = window.LivekitClient;
    if (!LK) {
      problem(t['video.problem.connection']);
      return;
    }
    const room = new LK.Room({ adaptiveStream: true, dynacast: true });
    lkRoom = room;
    const figures = new Map();
    const figureOf = (participant) => {
      let fig = figures.get(participant.identity);
      if (!fig) {
        fig = document.createElement('figure');
        fig.className = 'cf-remote';
        const video = document.createElement('video');
        video.autoplay = true;
        video.playsInline = true;
        video.setAttribute('aria-label', fill(t['video.peer.video'], { name: participant.name }));
        const cap = document.createElement('figcaption');
        const role = participant.attributes && participant.attributes.role;
        cap.textContent = role ? `${participant.name} (${roleName(role)})` : participant.name;
        fig.append(video, cap);
        $('visit-remotes').append(fig);
        figures.set(participant.identity, fig);
      }
      return fig;
    };
    room.on(LK.RoomEvent.TrackSubscribed, (track, pub, participant) => {
      const fig = figureOf(participant);
      if (track.kind === 'video') track.attach(fig.querySelector('video'));
      else fig.append(track.attach());
    });
    room.on(LK.RoomEvent.ParticipantDisconnected, (participant) => {
      const fig = figures.get(participant.identity);
      if (fig) fig.remove();
      figures.delete(participant.identity);
    });
    room.on(LK.RoomEvent.Reconnecting, () => showReconnecting(true));
    room.on(LK.RoomEvent.Reconnected, () => showReconnecting(false));
    room.on(LK.RoomEvent.ConnectionQualityChanged, (quality, participant) => {
      if (!participant.isLocal) return;
      const level = { excellent: 'good', good: 'good', poor: 'poor', lost: 'poor' }[quality] || 'unknown';
      $('visit-quality').dataset.quality = level;
      $('visit-quality').textContent = t[`video.quality.${level}`];
    });
    room.on(LK.RoomEvent.Disconnected, () => {
      if (!finished) finish(t['video.ended']);
    });
    await room.connect(media.url, media.token);
    if (stream) {
      for (const track of stream.getTracks()) await room.localParticipant.publishTrack(track);
    }
  }

  function finish(message) {
    finished = true;
    if (lkRoom) lkRoom.disconnect();
    state.admitted = false;
    peers.forEach(removePeer);
    if (stream) stream.getTracks().forEach((tr) => tr.stop());
    $('visit-call').hidden = true;
    $('visit-waiting').hidden = true;
    $('visit-self').hidden = true;
    const host = $('visit-host');
    if (host) host.hidden = true;
    status.textContent = message;
    announce(message);
    if (ws) ws.close();
  }

  $('visit-mute').addEventListener('click', (e) => {
    if (!stream) return;
    const on = e.currentTarget.getAttribute('aria-pressed') !== 'true';
    stream.getAudioTracks().forEach((tr) => { tr.enabled = !on; });
    e.currentTarget.setAttribute('aria-pressed', String(on));
    e.currentTarget.textContent = on ? t['video.unmute'] : t['video.mute'];
  });
  $('visit-camera').addEventListener('click', (e) => {
    if (!videoTrack) return;
    const off = e.currentTarget.getAttribute('aria-pressed') !== 'true';
    videoTrack.enabled = !off;
    e.currentTarget.setAttribute('aria-pressed', String(off));
    e.currentTarget.textContent = off ? t['video.camera.on'] : t['video.camera.off'];
  });
  $('visit-switch').addEventListener('click', async () => {
    const cams = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
    if (cams.length < 2) return;
    const current = videoTrack && videoTrack.getSettings().deviceId;
    const next = cams[(cams.findIndex((c) => c.deviceId === current) + 1) % cams.length];
    const s = await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: next.deviceId } } });
    const [track] = s.getVideoTracks();
    peers.forEach((p) => { if (p.videoSender && dataLevel < 2) p.videoSender.replaceTrack(track); });
    if (lkRoom) {
      if (videoTrack) await lkRoom.localParticipant.unpublishTrack(videoTrack);
      await lkRoom.localParticipant.publishTrack(track);
    }
    if (videoTrack) {
      stream.removeTrack(videoTrack);
      videoTrack.stop();
    }
    stream.addTrack(track);
    videoTrack = track;
    $('visit-local').srcObject = stream;
  });
  $('visit-data').addEventListener('click', () => setDataLevel((dataLevel + 1) % 3, false));
  $('visit-leave').addEventListener('click', () => {
    send({ type: 'leave' });
    finish(t['video.left.self']);
    const again = document.createElement('a');
    again.href = location.pathname + location.search;
    again.className = 'usa-button margin-left-1';
    again.textContent = t['video.rejoin'];
    status.append(' ', again);
  });
  const callMe = $('visit-call-me');
  if (callMe) callMe.addEventListener('click', () => send({ type: 'call-me' }));
  const noticeForm = $('visit-notice-form');
  if (noticeForm) {
    noticeForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = $('visit-notice-input').value.trim();
      if (text) send({ type: 'notice', text });
    });
  }
  const end = $('visit-end');
  if (end) {
    end.addEventListener('click', () => {
      if (window.confirm(t['video.host.end.confirm'])) send({ type: 'end' });
    });
  }

  startMedia().then(connect);
})();
