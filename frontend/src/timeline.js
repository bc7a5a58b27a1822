// One INBOUND message's way to its reply, oldest step first: what an operator opens when asked why a reply was late.
// Built from the conversation's messages as the API gives them (the reply's due_at, send_reason, delivery log).

// Why a reply was sent (the API's send_reason).
export const REASONS = {
  quiet: 'após o silêncio',
  max_wait: 'espera máxima atingida',
  max_messages: 'limite de mensagens',
  closed: 'conversa fechada',
  handoff: 'pediu atendente',
}

// Each step: `at` (ISO time, or null when the step has none), `kind` and `label`.
export function messageTimeline(message, messages) {
  const steps = [{ kind: 'arrived', at: message.received_at, label: 'chegou ao serviço' }]
  if (message.handled_by === 'agent') {
    steps.push({ kind: 'agent', at: null, label: 'com o atendente: o bot não responde a ela' })
    return steps
  }
  const reply = message.reply_id ? messages.find((m) => m.id === message.reply_id) : null
  if (!reply) {
    let label = 'sem resposta registrada'
    if (message.pending) label = 'aguardando: o grupo ainda não venceu'
    else if (message.reply_id) label = 'a resposta está em outra página'
    steps.push({ kind: 'waiting', at: null, label })
    return steps
  }
  // The reply lists the group's ids, one per line after its header: the whole group, loaded or not.
  const group = reply.content.trim().split('\n').length - 1
  steps.push({ kind: 'group', at: null, label: `entrou num grupo de ${group} mensage${group === 1 ? 'm' : 'ns'}` })
  if (reply.due_at) {
    const reason = REASONS[reply.send_reason] ?? reply.send_reason
    steps.push({ kind: 'due', at: reply.due_at, label: `o grupo venceu (${reason})` })
  }
  steps.push({ kind: 'replied', at: reply.timestamp, label: 'resposta escrita' })
  // The log comes newest first.
  for (const attempt of [...(reply.delivery?.log ?? [])].reverse()) {
    const answer = attempt.status ?? 'sem resposta'
    steps.push({ kind: 'attempt', at: attempt.started_at, label: `entrega #${attempt.number}: ${answer} (${attempt.outcome})` })
  }
  const delivery = reply.delivery
  if (delivery && delivery.attempts > (delivery.log?.length ?? 0)) {
    // No attempt logged yet, or older ones than the log shows.
    steps.push({ kind: 'delivery', at: null, label: `entrega: ${delivery.state}, ${delivery.attempts} tentativa(s) ao todo` })
  } else if (delivery && !delivery.log?.length) {
    steps.push({ kind: 'delivery', at: null, label: `entrega: ${delivery.state}` })
  }
  return steps
}

// "+5.1 s" from the message's arrival to a step.
export function sinceArrival(message, at) {
  if (!at) return ''
  const seconds = (Date.parse(at) - Date.parse(message.received_at)) / 1000
  return `+${seconds.toFixed(1)} s`
}
