/*
id: sealtrail-authorized-keys-added
title: SSH key added to authorized_keys by a command
level: high
status: stable
tactics: [persistence]
techniques: [T1098.004]
description: >
  A command in a shell history or the audit log writes to an authorized_keys file (echo or
  cat appending, tee, cp or mv onto it), and the file's modification time at that moment
  where the bundle recorded it. One finding per account.
false_positives:
  - users installing their own new key
author: sealtrail
sources: [shell_history, auditd, manifest_fs]
*/
WITH commands AS (
    SELECT event_uid, ts, host, "user" FROM events
    WHERE event_type IN ('shell_command', 'process_start')
      AND regexp_matches(command_line, '(>>?|\btee\b|\bcp\b|\bmv\b|\bssh-copy-id\b).*authorized_keys')
)
SELECT event_uid, ts, host, "user" AS user_name, NULL::VARCHAR AS src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM commands
UNION ALL
SELECT e.event_uid, e.ts, e.host, c."user", NULL, NULL, NULL, NULL, NULL
FROM events e JOIN commands c ON e.host IS NOT DISTINCT FROM c.host
     AND e.ts BETWEEN c.ts - INTERVAL 5 SECOND AND c.ts + INTERVAL 5 SECOND
WHERE e.source = 'manifest_fs' AND e.event_type = 'file_modified'
  AND regexp_matches(e.path, '/\.ssh/authorized_keys2?$')
