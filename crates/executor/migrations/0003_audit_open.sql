-- Steps 5 and 6 of an action (executor.md §4): the `pending` row and its move to `in_progress`
-- in one call, so that opening an action costs one round trip and one commit instead of two of
-- each. They are still two statements: the trigger sees, checks and chains both exactly as
-- before. SECURITY INVOKER (the default): the caller's grants on action_audit_logs apply.
CREATE FUNCTION audit_open(
    p_action_type varchar, p_namespace varchar, p_resource_type varchar,
    p_resource_name varchar, p_action_params jsonb, p_requested_by varchar,
    p_policy_decision jsonb, p_ip_address inet, p_signature text, p_correlation_id varchar,
    OUT audit_id uuid, OUT audit_created_at timestamptz)
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    INSERT INTO action_audit_logs
        (action_type, status, namespace, resource_type, resource_name, action_params,
         requested_by, policy_decision, ip_address, signature, correlation_id)
    VALUES (p_action_type, 'pending', p_namespace, p_resource_type, p_resource_name,
            p_action_params, p_requested_by, p_policy_decision, p_ip_address, p_signature,
            p_correlation_id)
    RETURNING id, created_at INTO audit_id, audit_created_at;
    UPDATE action_audit_logs SET status = 'in_progress' WHERE id = audit_id;
END
$$;
