/**
 * Form fields from a job type's JSON schema (pydantic's): one per property,
 * with its kind (number, integer, boolean, string, or a choice of values),
 * default, bounds and description. What the form cannot render as a field
 * (objects, arrays) is left to its default.
 */

function resolve(schema, root) {
  if (schema && typeof schema.$ref === 'string') {
    const name = schema.$ref.split('/').pop();
    return (root.$defs || root.definitions || {})[name] || {};
  }
  return schema || {};
}

function plainSchema(property, root) {
  const schema = resolve(property, root);
  // Optional[X] is anyOf [X, null]: the field is X.
  if (Array.isArray(schema.anyOf)) {
    const concrete = schema.anyOf.map((s) => resolve(s, root)).find((s) => s.type !== 'null');
    return { ...concrete, ...schema, anyOf: undefined, type: concrete?.type, nullable: true };
  }
  return schema;
}

export function parameterFields(parametersSchema) {
  const root = parametersSchema || {};
  const required = new Set(root.required || []);
  return Object.entries(root.properties || {})
    .map(([name, property]) => {
      const schema = plainSchema(property, root);
      let kind = schema.type;
      if (Array.isArray(schema.enum)) kind = 'choice';
      if (!['number', 'integer', 'boolean', 'string', 'choice'].includes(kind)) return null;
      return {
        name,
        kind,
        label: property.title || schema.title || name,
        description: property.description || schema.description || '',
        default: property.default ?? schema.default,
        required: required.has(name),
        minimum: schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum : undefined),
        maximum: schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum : undefined),
        minLength: schema.minLength,
        maxLength: schema.maxLength,
        choices: schema.enum,
      };
    })
    .filter(Boolean);
}

/** The form's starting values: each field's default, as the input holds it. */
export function initialValues(fields) {
  const values = {};
  for (const field of fields) {
    if (field.kind === 'boolean') values[field.name] = Boolean(field.default);
    else values[field.name] = field.default === undefined || field.default === null ? '' : String(field.default);
  }
  return values;
}

/**
 * The parameters to send. An empty optional field is left out (the type's
 * default applies); a number that does not parse is sent as typed, so the
 * API's message about it is the one shown.
 */
export function parametersFromValues(fields, values) {
  const parameters = {};
  for (const field of fields) {
    const value = values[field.name];
    if (field.kind === 'boolean') {
      parameters[field.name] = Boolean(value);
      continue;
    }
    if (value === '' || value === undefined) continue;
    if (field.kind === 'number' || field.kind === 'integer') {
      const number = Number(value);
      parameters[field.name] = Number.isFinite(number) ? number : value;
    } else {
      parameters[field.name] = value;
    }
  }
  return parameters;
}

/** "0 to 3600", "at least 1", "up to 50 characters": the bounds a field shows. */
export function boundsText(field) {
  if (field.kind === 'number' || field.kind === 'integer') {
    if (field.minimum !== undefined && field.maximum !== undefined) {
      return `${field.minimum} to ${field.maximum}`;
    }
    if (field.minimum !== undefined) return `at least ${field.minimum}`;
    if (field.maximum !== undefined) return `at most ${field.maximum}`;
  }
  if (field.kind === 'string' && field.maxLength !== undefined) {
    return `up to ${field.maxLength} characters`;
  }
  return '';
}
