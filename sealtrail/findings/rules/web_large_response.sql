/*
id: sealtrail-web-large-response
title: Unusually large HTTP response to one address
level: medium
status: stable
kind: correlation
tactics: [exfiltration]
techniques: [T1048, T1567]
description: >
  A response larger than four times the 99th percentile of the host's response sizes and at
  least 20 KB: a body far out of the ordinary, sent to one address (a dump, an export, a
  backup file). One finding per address.
false_positives:
  - large downloads the site offers (media, installers); logs with few requests
author: sealtrail
sources: [web_access]
*/
WITH sized AS (
    SELECT event_uid, ts, host, src_ip, TRY_CAST(attributes->>'$.bytes' AS BIGINT) AS bytes
    FROM events WHERE event_type = 'http_request'
),
limits AS (
    SELECT host, quantile_cont(bytes, 0.99) AS p99 FROM sized WHERE bytes IS NOT NULL
    GROUP BY host HAVING count(*) >= 100
)
SELECT s.event_uid, s.ts, s.host, NULL::VARCHAR AS user_name, s.src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM sized s JOIN limits l ON s.host IS NOT DISTINCT FROM l.host
WHERE s.bytes >= greatest(4 * l.p99, 20000)
