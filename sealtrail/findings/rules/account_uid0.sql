/*
id: sealtrail-account-uid0
title: Account created or changed with UID 0
level: critical
status: stable
tactics: [privilege-escalation, persistence]
techniques: [T1136.001, T1078.003]
description: >
  useradd or usermod gave an account UID 0 (root's rights under another name), from auth
  logs, the journal, or audited commands (useradd/usermod with -u 0 -o).
false_positives:
  - "none known: a second UID 0 account is never routine"
author: sealtrail
sources: [syslog, journald, auditd, shell_history]
*/
SELECT event_uid, ts, host, coalesce(target_user, "user") AS user_name, NULL::VARCHAR AS src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM events
WHERE (event_type IN ('account_created', 'account_changed') AND attributes->>'$.uid' = '0'
       AND source IN ('syslog', 'journald'))
   OR (event_type IN ('process_start', 'shell_command')
       AND regexp_matches(command_line, '\b(useradd|usermod)\b.*\s(-u|--uid)\s*0(\s|$)'))
