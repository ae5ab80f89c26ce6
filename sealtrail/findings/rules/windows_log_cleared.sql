/*
id: sealtrail-windows-log-cleared
title: Windows event log cleared
level: high
status: stable
tactics: [defense-evasion]
techniques: [T1070.001]
description: >
  The Security log was cleared (1102) or another event log was (System 104). One finding per
  host and account that cleared it.
false_positives:
  - "administrators clearing a log on purpose (rare: clearing is not routine)"
author: sealtrail
derived_from: d99b79d2-0a6f-4f46-ad8b-260b6e17f982
references: ["SigmaHQ a62b37e0-45d3-48d9-a517-90c1a1b0186b (Eventlog Cleared, System 104)"]
needs: [[Security, 1102], [System, 104]]
*/
SELECT event_uid, ts, host, coalesce(subject_user, "user") AS user_name, NULL::VARCHAR AS src_ip,
       channel AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM events
WHERE (channel = 'Security' AND event_id = 1102) OR (channel = 'System' AND event_id = 104)
