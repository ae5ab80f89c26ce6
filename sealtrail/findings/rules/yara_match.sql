/*
id: sealtrail-yara-match
title: YARA rule matched collected evidence
level: high
status: stable
tactics: [execution]
techniques: [T1505.003]
description: >
  A YARA rule of a 'sealtrail scan' matched a bundle member (or its decompressed content).
  One finding per rule (namespace.rule); the evidence rows are the yara_match events, each
  naming the member and its SHA-256, and the yara_matches table holds the matched strings.
  The ATT&CK technique is a placeholder for web shells, the common case; the rule's own
  metadata says what it looks for.
false_positives:
  - as the YARA rule's own
author: sealtrail
sources: [yara]
*/
SELECT event_uid, ts, host, NULL::VARCHAR AS user_name, NULL::VARCHAR AS src_ip,
       (attributes->>'$.namespace') || '.' || (attributes->>'$.rule') AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE event_type = 'yara_match'
