DROP INDEX job_type_c_time;
