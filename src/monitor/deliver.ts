/**
 * Delivering what the alert state machine decided: each message through the notifier, one after
 * the other, and the outcome an observation has when no channel is configured (nobody to tell, so
 * no alert state is kept). Takes the Notifier and Clock ports, so a test records what was sent.
 */
import type { AlertDelivery, Clock, Notifier } from '../ports';
import type { AlertMessage } from './alerts';
import type { ChannelState } from './report';

export interface DeliverAlertsResult {
  deliveries: Array<{ key: string; subject: string; delivery: AlertDelivery }>;
}

export interface ObservationOutcome {
  id: string;
  /** Subjects of the alerts sent for this observation. */
  sent: string[];
  /** Checks alerting after it. */
  active: string[];
  channels: { email?: ChannelState; webhook?: ChannelState };
}

/** Sends each message through every channel; a failing channel is recorded by the notifier, never blocks the next message. */
export async function deliverAlertMessages(messages: AlertMessage[], notifier: Notifier): Promise<DeliverAlertsResult> {
  const deliveries: DeliverAlertsResult['deliveries'] = [];
  for (const m of messages)
    deliveries.push({ key: m.key, subject: m.subject, delivery: await notifier.send({ severity: m.severity, subject: m.subject, text: m.text }) });
  return { deliveries };
}

/** The outcome of an observation when no alert channel is configured: nothing sent, nothing active, both channels "not configured" now. */
export function outcomeWithoutChannels(observationId: string, clock: Clock): ObservationOutcome {
  const at = clock.now().toISOString();
  return { id: observationId, sent: [], active: [], channels: { email: { last: 'not configured', at }, webhook: { last: 'not configured', at } } };
}
