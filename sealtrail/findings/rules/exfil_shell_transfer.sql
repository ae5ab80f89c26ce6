/*
id: sealtrail-exfil-shell-transfer
title: File sent to an outside address from a shell
level: high
status: stable
tactics: [exfiltration]
techniques: [T1048.003, T1041]
description: >
  A command in a shell history or the audit log that uploads to an address outside the
  private ranges: curl with -T, --upload-file, -F, -d @ or --data-binary @; wget with
  --post-file; scp or rsync to host:path; nc, ncat or socat to an address. One finding per
  destination address (shell and audit rows of one act land in one finding).
false_positives:
  - administrators copying backups or logs to an outside server
author: sealtrail
sources: [shell_history, auditd]
*/
WITH commands AS (
    SELECT event_uid, ts, host, command_line,
           regexp_extract(command_line, '(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})', 1) AS address
    FROM events
    WHERE event_type IN ('shell_command', 'process_start')
      AND regexp_matches(command_line,
          '(\bcurl\b.*(\s-T\s|--upload-file|\s-F\s|\s(-d|--data(-binary)?)\s+@)|\bwget\b.*--post-file|\b(scp|rsync)\b.*\s\S*\d+\.\d+\.\d+\.\d+:|\b(nc|ncat|socat)\b.*\d+\.\d+\.\d+\.\d+)')
)
SELECT event_uid, ts, host, NULL::VARCHAR AS user_name, NULL::VARCHAR AS src_ip,
       'to ' || address AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM commands
WHERE address <> ''
  AND NOT regexp_matches(address, '^(10\.|127\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.|169\.254\.)')
