/*
id: sealtrail-account-created
title: Local account created
level: medium
status: stable
tactics: [persistence]
techniques: [T1136.001]
description: >
  A local account was created (useradd in auth logs or the journal, Windows 4720). One
  finding per new account.
false_positives:
  - administrators creating accounts for new staff or services; packages creating system users
author: sealtrail
sources: [syslog, journald, winevtx]
*/
SELECT event_uid, ts, host, target_user AS user_name, NULL::VARCHAR AS src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM events
WHERE event_type = 'account_created'
  AND (source <> 'winevtx' OR (channel = 'Security' AND event_id = 4720))
