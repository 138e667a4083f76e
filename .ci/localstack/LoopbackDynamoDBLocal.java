// LoopbackDynamoDBLocal.java — DynamoDB Local bound to 127.0.0.1 (it has no
// bind-host flag). Arguments are those of DynamoDBLocal.jar.
import java.lang.reflect.Field; import org.eclipse.jetty.server.*;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;
public class LoopbackDynamoDBLocal { public static void main(String[] a) throws Exception {
  DynamoDBProxyServer p = ServerRunner.createServerFromCommandLineArgs(a);
  Field f = DynamoDBProxyServer.class.getDeclaredField("server"); f.setAccessible(true);
  for (Connector c : ((Server) f.get(p)).getConnectors()) ((ServerConnector) c).setHost("127.0.0.1");
  p.start(); p.join(); } }
