/*
id: sealtrail-admin-group-added
title: Account added to an administrators group
level: high
status: stable
tactics: [privilege-escalation, persistence]
techniques: [T1098]
description: >
  An account was added to sudo, wheel, admin or root (usermod -aG, gpasswd; auth logs,
  the journal, audit records) or to Administrators, Domain Admins, Enterprise Admins or
  Schema Admins (Windows 4728, 4732, 4756). One finding per account and group.
false_positives:
  - administrators granting rights on purpose; check the change ticket
author: sealtrail
sources: [syslog, journald, auditd, winevtx]
*/
SELECT event_uid, ts, host,
       coalesce(target_user, attributes->>'$.MemberName', "user") AS user_name,
       NULL::VARCHAR AS src_ip,
       coalesce(attributes->>'$.group', attributes->>'$.TargetUserName') AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE event_type = 'group_membership_changed'
  AND (lower(attributes->>'$.group') IN ('sudo', 'wheel', 'admin', 'root', 'adm')
       OR (source = 'winevtx' AND event_id IN (4728, 4732, 4756)
           AND lower(coalesce(attributes->>'$.TargetUserName', '')) IN
               ('administrators', 'domain admins', 'enterprise admins', 'schema admins')))
