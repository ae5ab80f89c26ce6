/*
id: sealtrail-web-bulk-export
title: Bulk data export over HTTP without authentication
level: high
status: stable
tactics: [collection, exfiltration]
techniques: [T1530, T1567]
description: >
  A successful (2xx) request without an authenticated user to an export, dump, download or
  backup endpoint (path or query naming export, dump, download, backup, all=, limit= of
  1,000 or more), answered with more than 1 KB. One finding per address; the bytes of each
  answer are in the evidence rows' attributes.
false_positives:
  - public downloads (price lists, catalogues) served from such paths
author: sealtrail
sources: [web_access]
*/
SELECT event_uid, ts, host, NULL::VARCHAR AS user_name, src_ip, NULL::VARCHAR AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE event_type = 'http_request' AND "user" IS NULL
  AND (attributes->>'$.status') LIKE '2%'
  AND TRY_CAST(attributes->>'$.bytes' AS BIGINT) > 1024
  AND regexp_matches(lower(coalesce(path, '') || '?' || coalesce(attributes->>'$.query', '')),
      '(export|dump|download|backup|[?&]all=|[?&](limit|per_page|page_size)=\d{4,})')
