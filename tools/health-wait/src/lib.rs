pub struct HealthWait;
