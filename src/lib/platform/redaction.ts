// Redaction: a SAS URL is a credential, so every log line, error body and telemetry attribute passes
// through redact() (it sits in platform/ so logging never depends on the integration layer).
/** Never log or return a SAS: this removes the query (signature included) from any text. */
export function redact(text: string): string {
  return text.replace(/([?&])(sig|se|sp|si|sv|sr|st|spr|sip|ss|srt|skoid|sktid|skt|ske|sks|skv|ses)=[^&\s"'<>]*/gi, '$1redacted');
}
