/*
id: sealtrail-cron-download-exec
title: Cron job that downloads and runs code
level: high
status: stable
tactics: [persistence, execution]
techniques: [T1053.003, T1105]
description: >
  A crontab entry (collected crontab files) or a command adding one (shell histories,
  audited commands) that fetches something with curl, wget or nc, or pipes into a shell.
  One finding per account.
false_positives:
  - update or monitoring jobs that fetch scripts; check the address
author: sealtrail
sources: [crontab, shell_history, auditd]
*/
SELECT event_uid, ts, host, "user" AS user_name, NULL::VARCHAR AS src_ip,
       NULL::VARCHAR AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE (source = 'crontab' AND command_line IS NOT NULL
       AND regexp_matches(command_line, '(\b(curl|wget|nc|ncat)\b|\|\s*(ba|z|da)?sh\b|base64\s+-d)'))
   OR (event_type IN ('shell_command', 'process_start')
       AND regexp_matches(command_line, '\bcrontab\b')
       AND regexp_matches(command_line, '(\b(curl|wget|nc|ncat)\b|\|\s*(ba|z|da)?sh\b)'))
