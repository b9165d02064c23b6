'use client';

import { useEffect, useMemo, useState } from 'react';
import { jobsService } from '@/lib/jobsService';
import { boundsText, initialValues, parameterFields, parametersFromValues } from '@/lib/parameterFields';

function ParameterInput({ field, value, onChange }) {
  const id = `param-${field.name}`;
  const hint = [field.description, boundsText(field)].filter(Boolean).join(' · ');
  if (field.kind === 'boolean') {
    return (
      <label className="checkbox-field" htmlFor={id}>
        <input
          id={id}
          type="checkbox"
          data-testid={id}
          checked={Boolean(value)}
          onChange={(e) => onChange(e.target.checked)}
        />
        {field.label}
        {hint && <span className="field-hint">{hint}</span>}
      </label>
    );
  }
  let input;
  if (field.kind === 'choice') {
    input = (
      <select id={id} data-testid={id} value={value} onChange={(e) => onChange(e.target.value)}>
        {!field.required && <option value="">(default)</option>}
        {field.choices.map((choice) => (
          <option key={String(choice)} value={String(choice)}>
            {String(choice)}
          </option>
        ))}
      </select>
    );
  } else {
    const numeric = field.kind === 'number' || field.kind === 'integer';
    input = (
      <input
        id={id}
        data-testid={id}
        type={numeric ? 'number' : 'text'}
        inputMode={numeric ? 'decimal' : undefined}
        step={field.kind === 'integer' ? 1 : numeric ? 'any' : undefined}
        min={field.minimum}
        max={field.maximum}
        minLength={field.minLength}
        maxLength={field.maxLength}
        placeholder={field.default !== undefined ? String(field.default) : undefined}
        value={value}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  }
  return (
    <label htmlFor={id}>
      {field.label}
      {input}
      {hint && <span className="field-hint">{hint}</span>}
    </label>
  );
}

/**
 * The submit form, built from GET /api/job-types: a type select and one field
 * per parameter of the chosen type. Bounds are shown, and checked by the API:
 * the form does not block a submit, so the API's messages (made readable) are
 * the ones the user reads. A message stays until the next submit succeeds.
 */
export default function SubmitJobForm({ onSubmitted, onUnauthorized }) {
  const [types, setTypes] = useState(null);
  const [typesError, setTypesError] = useState(null);
  const [name, setName] = useState('');
  const [typeName, setTypeName] = useState('');
  const [values, setValues] = useState({});
  const [submitting, setSubmitting] = useState(false);
  const [error, setError] = useState(null);
  const [message, setMessage] = useState(null);

  useEffect(() => {
    let current = true;
    jobsService
      .getJobTypes()
      .then((list) => {
        if (!current) return;
        setTypes(list);
        setTypesError(null);
        if (list.length > 0) setTypeName((old) => old || list[0].name);
      })
      .catch((err) => {
        if (!current) return;
        if (err.status === 401) onUnauthorized();
        else setTypesError(err.message || 'Could not load the job types');
      });
    return () => {
      current = false;
    };
  }, [onUnauthorized]);

  const type = types?.find((t) => t.name === typeName) ?? null;
  const fields = useMemo(() => parameterFields(type?.parameters_schema), [type]);

  // A new type starts from its own defaults.
  useEffect(() => {
    setValues(initialValues(fields));
  }, [fields]);

  async function handleSubmit(event) {
    event.preventDefault();
    setMessage(null);
    setSubmitting(true);
    try {
      const job = await jobsService.submitJob({
        name: name.trim(),
        type: typeName,
        parameters: parametersFromValues(fields, values),
      });
      setName('');
      setError(null);
      setMessage(`Submitted job #${job.id} (${job.name})`);
      onSubmitted(job);
    } catch (err) {
      if (err.status === 401) {
        onUnauthorized();
        return;
      }
      setError(err.message || 'Could not submit the job');
    } finally {
      setSubmitting(false);
    }
  }

  return (
    <section className="card">
      <h2>Submit a job</h2>
      {typesError && (
        <p className="error-text" role="alert" data-testid="job-types-error">
          {typesError}
        </p>
      )}
      {/* noValidate: the API's readable messages, not the browser's bubbles. */}
      <form className="submit-form" onSubmit={handleSubmit} noValidate>
        <label htmlFor="job-name-input">
          Name
          <input
            id="job-name-input"
            data-testid="job-name-input"
            value={name}
            maxLength={255}
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        <label htmlFor="job-type-input">
          Type
          <select
            id="job-type-input"
            data-testid="job-type-input"
            value={typeName}
            disabled={!types}
            onChange={(e) => setTypeName(e.target.value)}
          >
            {(types || []).map((t) => (
              <option key={t.name} value={t.name}>
                {t.name}
              </option>
            ))}
          </select>
        </label>
        {type?.description && (
          <p className="muted type-description" data-testid="job-type-description">
            {type.description}
          </p>
        )}
        <div className="parameter-fields" data-testid="parameter-fields">
          {fields.map((field) => (
            <ParameterInput
              key={`${typeName}-${field.name}`}
              field={field}
              value={values[field.name] ?? ''}
              onChange={(value) => setValues((old) => ({ ...old, [field.name]: value }))}
            />
          ))}
        </div>
        <button
          type="submit"
          className="button primary"
          data-testid="job-submit"
          disabled={submitting || !types}
        >
          {submitting ? 'Submitting…' : 'Submit'}
        </button>
      </form>
      {error && (
        <p className="error-text" role="alert" data-testid="job-submit-error">
          {error}
        </p>
      )}
      {message && (
        <p className="success-text" data-testid="job-submit-success">
          {message}
        </p>
      )}
    </section>
  );
}
